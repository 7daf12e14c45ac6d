"""Score a masked-LM on held-out text: masked-token loss, perplexity, accuracy.

Masks are drawn from a local generator seeded per call, so two evaluations of the same
features mask the same positions with the same replacements: the validation curve moves
because the model changed, not because the masks did. The global RNG is left untouched,
so evaluating mid-training does not shift the training masks (exact resume holds).
"""

from __future__ import annotations

import math

import numpy as np

from tunelab.data.batching import sorted_batches
from tunelab.tasks.mlm import MLMFeatures, collate


def score_mlm_features(
    model, features: MLMFeatures, batch_size: int, pad_id: int, seed: int = 0
) -> dict:
    """{"loss", "perplexity", "masked_accuracy", "tokens"} of `model` on `features`.

    loss is the mean cross-entropy over all masked tokens of the split (not a mean of batch
    means), perplexity = exp(loss). The same (features, batch_size, seed) gives the same masks.
    """
    import torch
    import torch.nn.functional as F

    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)  # CPU: masks are drawn before .to(device)
    total_loss, correct, tokens = 0.0, 0, 0
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for index in sorted_batches(features.lengths, batch_size):
            batch = collate(features, np.sort(index), pad_id, generator=generator)
            labels = batch.pop("labels").to(device)  # (B, T), -100 where not masked
            logits = model(**{k: v.to(device) for k, v in batch.items()}).logits  # (B, T, V)
            chosen = labels != -100
            picked = logits[chosen].float()  # (M, V)
            target = labels[chosen]
            total_loss += float(F.cross_entropy(picked, target, reduction="sum"))
            correct += int((picked.argmax(dim=-1) == target).sum())
            tokens += int(target.numel())
    model.train(was_training)
    if tokens == 0:
        nan = float("nan")
        return {"loss": nan, "perplexity": nan, "masked_accuracy": nan, "tokens": 0}
    mean = total_loss / tokens
    return {
        "loss": mean,
        "perplexity": math.exp(mean) if mean < 700 else math.inf,
        "masked_accuracy": correct / tokens,
        "tokens": tokens,
    }
