"""Compute the baselines of a classification run on its own splits, so a user sees what
fine-tuning added: majority class, TF-IDF + logistic regression, and a linear probe on the
frozen pretrained encoder."""

from __future__ import annotations

import time

from tunelab.config.schema import RunConfig
from tunelab.evaluation.baselines.text import (
    frozen_embeddings,
    linear_probe_baseline,
    majority_baseline,
    tfidf_logreg_baseline,
)
from tunelab.models.loading import quiet_transformers


def _joined(split) -> list[str]:
    if split.pairs is None:
        return split.texts
    return [f"{a} [SEP] {b}" for a, b in zip(split.texts, split.pairs)]


def run_baselines(cfg: RunConfig, data, source, tokenizer) -> tuple[dict, dict]:
    """({name: {split: metrics}}, {name: seconds}) for the baselines the config asks for."""
    train = data.splits["train"]
    evals = {n: s for n, s in data.splits.items() if n in ("validation", "test")}
    names, multi = data.labels.names, data.labels.multi_label
    out, seconds = {}, {}
    for name in cfg.eval.baselines:
        t0 = time.perf_counter()
        if name == "majority":
            out[name] = majority_baseline(train.y, {n: s.y for n, s in evals.items()}, names, multi)
        elif name == "tfidf_logreg":
            sets = {n: (_joined(s), s.y) for n, s in evals.items()}
            out[name] = tfidf_logreg_baseline(
                _joined(train), train.y, sets, names, multi, seed=cfg.train.seed
            )
        elif name == "linear_probe":
            out[name] = _linear_probe(cfg, train, evals, names, multi, source, tokenizer)
        seconds[name] = round(time.perf_counter() - t0, 3)
        print(f"baseline {name}: {seconds[name]:.1f}s")
    return out, seconds


def _linear_probe(cfg, train, evals, names, multi, source, tokenizer) -> dict:
    from transformers import AutoModel

    with quiet_transformers():
        encoder = AutoModel.from_pretrained(source.path, use_safetensors=True)

    def embed(split):
        return frozen_embeddings(
            encoder,
            tokenizer,
            split.texts,
            split.pairs,
            batch_size=cfg.eval.batch_size,
            max_length=cfg.data.max_length,
        )

    sets = {n: (embed(s), s.y) for n, s in evals.items()}
    return linear_probe_baseline(embed(train), train.y, sets, names, multi, seed=cfg.train.seed)
