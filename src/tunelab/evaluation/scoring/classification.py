"""Score a classifier on a split: loss plus the classification metrics."""

from __future__ import annotations

import numpy as np

from tunelab.data.batching import Features
from tunelab.data.labels import LabelSpace
from tunelab.inference.forward import logits_for
from tunelab.metrics.classification import classification_metrics
from tunelab.tasks import classification as task


def score_logits(logits: np.ndarray, y: np.ndarray, labels: LabelSpace) -> dict:
    """Unweighted loss plus the classification metrics of logits (N, C) against labels."""
    import torch

    loss = task.loss(torch.from_numpy(logits), torch.from_numpy(y))
    pred, probs = task.predict(logits, labels.multi_label)
    metrics = classification_metrics(
        y, pred, labels.names, multi_label=labels.multi_label, probs=probs
    )
    return {"loss": float(loss), **metrics}


def score_features(
    model, features: Features, labels: LabelSpace, batch_size: int, pad_id: int
) -> dict:
    """Loss and metrics of `model` on tokenized rows with labels."""
    logits = logits_for(model, features, batch_size, pad_id)
    return score_logits(logits, features.labels, labels)
