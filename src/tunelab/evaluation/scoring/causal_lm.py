"""Causal-LM scoring: loss and perplexity on the trained tokens (generation: generation.py)."""

from __future__ import annotations

import math

import numpy as np

from tunelab.data.batching import sorted_batches
from tunelab.tasks.causal_lm import collate


def token_nll(logits, labels) -> tuple[float, int]:
    """(summed cross-entropy, count) over the labelled tokens: logits (B, T, V) against labels
    (B, T), -100 skipped. Callers average over a whole split: loss = sum / count."""
    import torch.nn.functional as F

    total = F.cross_entropy(
        logits.float().reshape(-1, logits.size(-1)),
        labels.reshape(-1),
        ignore_index=-100,
        reduction="sum",
    )
    return float(total), int((labels != -100).sum())


def score_lm_features(model, features, batch_size: int, pad_id: int) -> dict:
    """{"loss", "perplexity", "tokens"} over every trained token of the packed sequences."""
    import torch

    device = next(model.parameters()).device
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for index in sorted_batches(features.lengths, batch_size):
            batch = {
                k: v.to(device) for k, v in collate(features, np.asarray(index), pad_id).items()
            }
            labels = batch.pop("labels")
            logits = model(**batch).logits[:, -labels.shape[1] :]  # prompt tuning: skip virtual
            logits = logits[:, :-1]  # (B, T-1, V) predicts labels[:, 1:]
            nll, n = token_nll(logits, labels[:, 1:])
            total, count = total + nll, count + n
    model.train(was_training)
    loss = total / max(count, 1)
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "tokens": count}
