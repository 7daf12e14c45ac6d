"""seq2seq scoring: teacher-forced loss/perplexity on every row's target tokens, then greedy
(or configured) generation on the first `eval.generate_rows` rows and the text metrics of
metrics/text.py against their references."""

from __future__ import annotations

import math
import time

import numpy as np

from tunelab.config.generation import GenerationConfig
from tunelab.data.batching import Features, sorted_batches
from tunelab.data.batching import collate as pad_collate
from tunelab.evaluation.scoring.causal_lm import token_nll
from tunelab.inference.generation import cut_at_stop
from tunelab.metrics.text import text_metrics
from tunelab.models.encoder_decoder import end_ids
from tunelab.tasks.seq2seq import collate, decoder_start_id
from tunelab.tasks.seq2seq_data import Seq2SeqFeatures, Seq2SeqSettings, cut, encode_sources

SAMPLES = 5  # (source, reference, prediction) examples kept in the scores
SAMPLE_CHARS = 300  # sources are shortened to this many characters in the samples


def target_loss(model, features, batch_size: int, pad_id: int) -> tuple[float, int]:
    """(mean cross-entropy per target token, number of target tokens) over all rows."""
    import torch

    device = next(model.parameters()).device
    start = decoder_start_id(model)
    total, count = 0.0, 0
    with torch.inference_mode():
        for index in sorted_batches(features.lengths, batch_size):
            batch = collate(features, np.asarray(index), pad_id, decoder_start=start)
            batch = {k: v.to(device) for k, v in batch.items()}
            labels = batch.pop("labels")  # (B, L)
            nll, n = token_nll(model(**batch).logits, labels)  # logits (B, L, V)
            total, count = total + nll, count + n
    return total / max(count, 1), count


def generate_rows(model, features, rows: list[int], batch_size: int, pad_id: int) -> list[str]:
    """Decoded outputs for feature rows `rows` (in that order): batches of similar source
    length (right-padded with an attention mask, as encoders take them), decoding from
    `features.settings.generation`, at most the target limit in new tokens (the model never
    saw longer targets), special tokens skipped, cut at the stop strings."""
    import torch

    tok, settings = features.tokenizer, features.settings
    gen = settings.generation
    kwargs = gen.generate_kwargs()
    if features.target_limit:
        kwargs["max_new_tokens"] = min(kwargs["max_new_tokens"], features.target_limit)
    eos = model.generation_config.eos_token_id
    eos = list(eos) if isinstance(eos, (list, tuple)) else [] if eos is None else [eos]
    _, end = end_ids(tok)
    eos = [*eos, end] if end is not None and end not in eos else eos
    src = features.columns["input_ids"]  # with attention_mask: right padding suits encoders
    order = sorted(rows, key=lambda i: -len(src[i]))
    device = next(model.parameters()).device
    out: dict[int, str] = {}
    with torch.inference_mode(), torch.random.fork_rng():  # sampling leaves training RNG alone
        if gen.seed is not None:
            torch.manual_seed(gen.seed)
        for k in range(0, len(order), batch_size):
            chunk = order[k : k + batch_size]
            batch = pad_collate(Features(features.columns), np.asarray(chunk), pad_id)  # (B, S)
            generated = model.generate(
                **{name: v.to(device) for name, v in batch.items()},
                pad_token_id=pad_id,
                eos_token_id=eos or None,
                use_cache=True,
                **kwargs,
            )  # (B, 1 + new): decoder start, then the new tokens
            texts = tok.batch_decode(generated, skip_special_tokens=True)
            out.update({i: cut_at_stop(t, gen.stop)[0].strip() for i, t in zip(chunk, texts)})
    return [out[i] for i in rows]


def score_seq2seq_features(model, features, batch_size: int, pad_id: int) -> dict:
    """{"loss", "perplexity", "tokens"} over every row, then on the first eval.generate_rows
    rows {"bleu", "chrf", "rouge1", "rouge2", "rougeL", "exact_match", "token_f1"} (0-100),
    "generated_rows", "gen_len_mean" (words), "generate_seconds", and "samples": a few
    {source, reference, prediction} dicts to read."""
    was_training = model.training
    model.eval()
    try:
        loss, count = target_loss(model, features, batch_size, pad_id)
        n = len(features)
        limit = features.settings.generate_rows
        rows = list(range(n if limit is None else min(limit, n)))
        t0 = time.perf_counter()
        preds = generate_rows(model, features, rows, batch_size, pad_id) if rows else []
        seconds = time.perf_counter() - t0
    finally:
        model.train(was_training)
    refs = [features.references[i] for i in rows]
    out = {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "tokens": count}
    out.update(text_metrics(preds, refs))
    out["generated_rows"] = len(rows)
    out["gen_len_mean"] = float(np.mean([len(p.split()) for p in preds])) if preds else 0.0
    out["generate_seconds"] = round(seconds, 3)
    out["samples"] = [
        {
            "source": features.sources[i][:SAMPLE_CHARS],
            "reference": features.references[i][0],
            "prediction": p,
        }
        for i, p in zip(rows[:SAMPLES], preds[:SAMPLES])
    ]
    return out


def generate_texts(
    model,
    tokenizer,
    texts: list[str],
    *,
    generation=None,
    prefix: str = "",
    max_length: int | None = None,
    batch_size: int = 16,
) -> list[str]:
    """Outputs of a seq2seq model for raw source `texts` (a trained run: pass its
    `meta["columns"]["prefix"]` and `max_length`), decoded as in evaluation."""
    _, end = end_ids(tokenizer)
    ids = encode_sources(tokenizer, texts, prefix or "")
    if max_length is not None:
        ids = [cut(x, max_length, end) for x in ids]
    settings = Seq2SeqSettings(generation=generation or GenerationConfig())
    features = Seq2SeqFeatures(
        columns={"input_ids": ids, "attention_mask": [[1] * len(x) for x in ids]},
        sources=list(texts),
        tokenizer=tokenizer,
        settings=settings,
    )
    was_training = model.training
    model.eval()
    try:
        return generate_rows(
            model, features, list(range(len(ids))), batch_size, tokenizer.pad_token_id
        )
    finally:
        model.train(was_training)
