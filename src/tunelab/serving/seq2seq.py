"""/v1/completions for encoder-decoder (seq2seq) models: prompt -> generated target text.

The continuous-batching engine (engine.py) steps decoder-only models one token at a time
over a shared KV cache; an encoder-decoder does not fit it. A seq2seq model is served
through the request batcher (batcher.py) instead: prompts of concurrent requests are
collected into a batch and each batch runs `model.generate` once per distinct decoding
setting, decoded as `tunelab eval` and `tunelab predict` decode (evaluation/scoring/seq2seq.py:
the source prefix and length limit of the run, special tokens skipped, cut at stop strings).
So a reply comes whole when its batch is done: no streaming, no logprobs, no echo.

Decoding settings: the run's `generation:` section, with the request's max_tokens,
temperature, top_p, top_k, stop and seed over it (temperature > 0 samples, as OpenAI's
default of 1.0 does; pass temperature 0 for the run's greedy or beam decoding).
presence/frequency penalties apply to the decoder-only engine only.
"""

from __future__ import annotations

import asyncio
import time

from tunelab.serving.engine import QueueFull
from tunelab.serving.limits import ApiError


def runner(served, micro_batch: int):
    """The batch function: prompts and their decoding settings (GenerationConfig as JSON,
    the batcher's per-item value) -> {"text", "completion_tokens", "finish"} per prompt."""
    from tunelab.config.generation import GenerationConfig
    from tunelab.evaluation.scoring.seq2seq import generate_texts

    trained = served.trained
    prefix = trained.meta.columns.get("prefix") or ""
    tok = trained.tokenizer

    def run(texts: list[str], settings: list[str] | None) -> list[dict]:
        settings = settings or [GenerationConfig().model_dump_json()] * len(texts)
        out: list[dict | None] = [None] * len(texts)
        for key in dict.fromkeys(settings):  # one generate call per distinct setting
            rows = [i for i, s in enumerate(settings) if s == key]
            gen = GenerationConfig.model_validate_json(key)
            texts_out = generate_texts(
                trained.model,
                tok,
                [texts[i] for i in rows],
                generation=gen,
                prefix=prefix,
                max_length=trained.max_length,
                batch_size=max(1, min(len(rows), micro_batch)),
            )
            for i, text in zip(rows, texts_out):
                n = len(tok(text, add_special_tokens=False)["input_ids"]) if text else 0
                finish = "length" if n >= gen.max_new_tokens else "stop"
                out[i] = {"text": text, "completion_tokens": n, "finish": finish}
        return out

    return run


def settings_for(served, body, choice: int = 0) -> str:
    """The decoding settings of one choice of a request, as the batcher's per-item value."""
    from pydantic import ValidationError

    from tunelab.config.generation import GenerationConfig

    base = dict(served.meta.generation or {})
    asked = {
        "max_new_tokens": body.max_tokens,
        "temperature": body.temperature,
        "top_p": body.top_p,
        "top_k": body.top_k,
        "stop": list(body.stop or []) or base.get("stop") or [],
        "seed": None if body.seed is None else body.seed + choice,
    }
    merged = {**base, **{k: v for k, v in asked.items() if v is not None}}
    if merged.get("temperature", 0) > 0:
        merged["num_beams"] = 1  # sampling asked: the run's beam search does not apply
    try:
        return GenerationConfig(**merged).model_dump_json()
    except ValidationError as exc:
        raise ApiError(400, f"decoding settings: {exc.errors()[0]['msg']}") from None


async def completions(served, engine, body, prompts: list[str], settings) -> dict:
    """An OpenAI text_completion reply for a seq2seq model (see the module docstring)."""
    from tunelab.serving import generate as gen

    if body.stream:
        raise ApiError(400, "a seq2seq model's replies cannot be streamed", param="stream")
    if body.echo:
        raise ApiError(400, "echo is not supported for seq2seq models", param="echo")
    gen.token_budget(served, body.max_tokens, 0, settings.max_tokens_limit)  # 400s
    texts, options = [], []
    for p in prompts:
        for i in range(body.n):
            texts.append(p)
            options.append(settings_for(served, body, i))
    created = int(time.time())
    try:
        done = await asyncio.wait_for(engine.submit(texts, options), settings.timeout_s)
    except QueueFull as exc:
        raise ApiError(429, f"server busy: {exc}; retry later", "queue_full") from None
    except asyncio.TimeoutError:
        raise ApiError(
            504, f"generation took longer than {settings.timeout_s:g}s", "timeout"
        ) from None
    tok = served.tokenizer
    prompt_tokens = sum(len(tok(p)["input_ids"]) for p in prompts) * body.n
    completion_tokens = sum(d["completion_tokens"] for d in done)
    return {
        "id": gen.new_id("cmpl"),
        "object": "text_completion",
        "created": created,
        "model": body.model,
        "choices": [
            {"index": i, "text": d["text"], "logprobs": None, "finish_reason": d["finish"]}
            for i, d in enumerate(done)
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
