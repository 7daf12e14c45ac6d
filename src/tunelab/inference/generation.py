"""Text generation from causal LMs: batched completions (`tunelab generate`), the interactive
chat (`tunelab chat`) and the generated samples of a run (does the tuned model stop?).

Settings come from a GenerationConfig (config/generation.py): greedy, sampling, beams,
max tokens and stop strings. Each completion reports why it ended: "eos" (the model ended its
turn), "stop" (a stop string, cut from the text) or "length" (max_new_tokens ran out, the
failure mode of a model that never learned to stop).

Encoder-decoder (seq2seq) models decode through evaluation/scoring/seq2seq.py
(`generate_texts`), which `tunelab eval`, `tunelab predict`/`generate` and `tunelab serve`
share: their source prefix and length limit come from the run.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence

from tunelab.config.generation import GenerationConfig

Prompt = str | list[dict]  # a user message, or a whole conversation so far


def _render(tokenizer, prompt: Prompt, chat: bool) -> str:
    """The prompt as the model sees it: the chat template with a generation prompt when the
    tokenizer has one, else the text itself."""
    if chat and getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if not isinstance(prompt, str):
        raise ValueError("a conversation prompt needs a tokenizer with a chat template")
    return prompt


def _eos_ids(model, tokenizer) -> set[int]:
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids |= set(configured) if isinstance(configured, (list, tuple)) else {configured}
    return {i for i in ids if i is not None}


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """text up to the earliest stop string, and whether one was found."""
    hits = [i for i in (text.find(s) for s in stop) if i >= 0]
    return (text[: min(hits)], True) if hits else (text, False)


def complete(
    model,
    tokenizer,
    prompts: Sequence[Prompt],
    gen: GenerationConfig | None = None,
    *,
    chat: bool = True,
    batch_size: int = 8,
    progress: str | None = None,
) -> list[dict]:
    """[{"text", "tokens", "finish": "eos"|"stop"|"length"}] per prompt, generated in batches
    (left-padded, so every row's new tokens start at the same column); with `progress`, a
    bar of that title counts the rows."""
    import torch
    from tqdm.auto import tqdm

    gen = gen or GenerationConfig()
    texts = [_render(tokenizer, p, chat) for p in prompts]
    eos = _eos_ids(model, tokenizer)
    extra = {"stop_strings": gen.stop, "tokenizer": tokenizer} if gen.stop else {}
    if gen.seed is not None:
        torch.manual_seed(gen.seed)
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    model.eval()
    out = []
    bar = tqdm(total=len(texts), desc=progress, unit="row", disable=progress is None)
    try:
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(
                texts[start : start + batch_size],
                return_tensors="pt",
                padding=True,
                add_special_tokens=not chat or not getattr(tokenizer, "chat_template", None),
            ).to(model.device)
            with torch.inference_mode():
                ids = model.generate(
                    **enc,
                    eos_token_id=sorted(eos),
                    pad_token_id=tokenizer.pad_token_id,
                    use_cache=True,  # a model loaded for training has it off in its config
                    **gen.generate_kwargs(),
                    **extra,
                )
            for row in ids[:, enc["input_ids"].shape[1] :].tolist():
                end = next((i for i, t in enumerate(row) if t in eos), None)
                new = row if end is None else row[:end]
                text, stopped = cut_at_stop(
                    tokenizer.decode(new, skip_special_tokens=True), gen.stop
                )
                finish = "stop" if stopped else "eos" if end is not None else "length"
                out.append({"text": text.strip(), "tokens": len(new), "finish": finish})
            bar.update(len(ids))
    finally:
        tokenizer.padding_side = side
        bar.close()
    return out


def chat_loop(
    model,
    tokenizer,
    gen: GenerationConfig | None = None,
    *,
    system: str | None = None,
    read=input,
    write=None,
) -> list[dict]:
    """An interactive chat: each reply streams token by token as it is generated.
    `/reset` clears the history, `/exit` (or end of input) leaves; returns the history."""
    from transformers import TextIteratorStreamer

    gen = gen or GenerationConfig(max_new_tokens=256)
    write = write or (lambda text: (sys.stdout.write(text), sys.stdout.flush()))
    start = [{"role": "system", "content": system}] if system else []
    history = list(start)
    extra = {"stop_strings": gen.stop, "tokenizer": tokenizer} if gen.stop else {}
    model.eval()
    while True:
        try:
            line = read("you> ").strip()
        except EOFError:
            break
        if line in ("/exit", "/quit"):
            break
        if line == "/reset":
            history = list(start)
            continue
        if not line:
            continue
        history.append({"role": "user", "content": line})
        enc = tokenizer.apply_chat_template(
            history, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = {
            **{k: v.to(model.device) for k, v in enc.items()},
            "streamer": streamer,
            "eos_token_id": sorted(_eos_ids(model, tokenizer)),
            "pad_token_id": tokenizer.pad_token_id,
            "use_cache": True,
            **gen.generate_kwargs(),
            **extra,
        }
        thread = threading.Thread(target=model.generate, kwargs=kwargs, daemon=True)
        thread.start()  # generate runs without grad
        write("model> ")
        pieces = []
        for piece in streamer:
            pieces.append(piece)
            write(piece)
        thread.join()
        write("\n")
        reply = cut_at_stop("".join(pieces), gen.stop)[0].strip()
        history.append({"role": "assistant", "content": reply})
    return history


def generation_samples(
    model,
    tokenizer,
    prompts: list[list[dict]],
    references: list[str],
    gen: GenerationConfig,
    progress: str | None = None,
) -> dict:
    """Generate for held-out conversations (each up to its answer): how often the model ends
    its turn by itself (`stop_rate`), mean new tokens, and the first samples side by side."""
    outs = complete(model, tokenizer, prompts, gen, progress=progress)
    n = max(len(outs), 1)
    return {
        "stop_rate": sum(o["finish"] != "length" for o in outs) / n,
        "gen_tokens_mean": sum(o["tokens"] for o in outs) / n,
        "generated_rows": len(outs),
        "samples": [
            {
                "prompt": p[-1]["content"],
                "reference": r,
                "generated": o["text"],
                "finish": o["finish"],
            }
            for p, r, o in list(zip(prompts, references, outs))[:5]
        ],
    }


def split_samples(model, task, split, tokenizer, cfg, who: str = "fine-tuned") -> dict:
    """generation_samples() on up to eval.generate_rows conversations of a split, for tasks
    that expose `generation_prompts` (causal-lm chat data); {} otherwise."""
    pick = task.generation_prompts
    if pick is None or cfg.eval.generate_rows == 0:  # None: every row
        return {}
    prompts, references = pick(split, cfg.eval.generate_rows)
    if not prompts:
        return {}
    title = f"{who}: generating ({split.name})"
    return generation_samples(model, tokenizer, prompts, references, cfg.generation, title)
