"""Classification metrics as plain, JSON-serialisable dicts.

Every number a run reports (results.json, report.html, early stopping) comes from here so
that the fine-tuned model and its baselines are always scored by exactly the same code.
scikit-learn does the arithmetic; this module fixes the conventions: all labels are scored
(even those absent from a split), zero_division=0, and plain Python floats/ints out.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np


def primary_metric_mode(name: str) -> Literal["max", "min"]:
    """Whether a larger ("max") or smaller ("min") value of metric `name` is better.

    Losses, perplexity and error rates are minimised, every other metric here (accuracy, f1,
    precision, ...) maximised. A split prefix such as "validation_loss" or "eval_loss" is understood.
    """
    base = name.rsplit("/", 1)[-1]
    return "min" if base.endswith(("loss", "perplexity")) or base in ("ece",) else "max"


def _as_array(y: Any) -> np.ndarray:
    arr = np.asarray(y)
    if arr.dtype == bool:
        arr = arr.astype(np.int64)
    return arr


def classification_metrics(
    y_true: Any,
    y_pred: Any,
    label_names: list[str],
    multi_label: bool = False,
    probs: Any = None,
) -> dict[str, Any]:
    """Score predictions against gold labels.

    Single-label: `y_true`, `y_pred` are int arrays (N,) of indices into `label_names`.
    Multi-label: they are multi-hot arrays (N, C) with C == len(label_names).
    `probs` (optional): (N, C) class probabilities (softmax for single-label, per-label
    sigmoid for multi-label); when given, `roc_auc_macro` is added where it is defined
    (every scored class has both positives and negatives) and, single-label, `log_loss`.

    Returns accuracy (subset accuracy for multi-label), precision/recall/f1 with macro,
    micro and weighted averages (plus samples averages for multi-label), hamming_loss
    (multi-label), per_class {name: {precision, recall, f1, support}}, confusion_matrix
    (single-label; rows = true, cols = predicted, label_names order) and n.
    """
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        hamming_loss,
        precision_recall_fscore_support,
    )

    n_classes = len(label_names)
    if n_classes == 0:
        raise ValueError("label_names is empty")
    yt, yp = _as_array(y_true), _as_array(y_pred)
    if yt.shape != yp.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {yt.shape} vs {yp.shape}")
    if yt.shape[0] == 0:
        raise ValueError("cannot compute metrics on zero rows")
    if multi_label:
        if yt.ndim != 2 or yt.shape[1] != n_classes:
            raise ValueError(
                f"multi-label targets must be (N, {n_classes}) multi-hot, got shape {yt.shape}"
            )
    elif yt.ndim != 1:
        raise ValueError(f"single-label targets must be (N,) class indices, got shape {yt.shape}")

    labels = list(range(n_classes))
    out: dict[str, Any] = {"accuracy": float(accuracy_score(yt, yp))}
    if multi_label:
        out["hamming_loss"] = float(hamming_loss(yt, yp))
    averages = ["macro", "micro", "weighted"] + (["samples"] if multi_label else [])
    for avg in averages:
        p, r, f, _ = precision_recall_fscore_support(
            yt, yp, labels=labels, average=avg, zero_division=0
        )
        out[f"precision_{avg}"], out[f"recall_{avg}"], out[f"f1_{avg}"] = (
            float(p),
            float(r),
            float(f),
        )
    p, r, f, s = precision_recall_fscore_support(
        yt, yp, labels=labels, average=None, zero_division=0
    )
    out["per_class"] = {
        str(name): {
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "support": int(s[i]),
        }
        for i, name in enumerate(label_names)
    }
    if not multi_label:
        cm = confusion_matrix(yt, yp, labels=labels)
        out["confusion_matrix"] = [[int(v) for v in row] for row in cm]
    if probs is not None:
        out.update(
            _probability_metrics(yt, np.asarray(probs, dtype=np.float64), labels, multi_label)
        )
    out["n"] = int(yt.shape[0])
    return out


def _probability_metrics(
    yt: np.ndarray, probs: np.ndarray, labels: list[int], multi_label: bool
) -> dict[str, float]:
    """ROC AUC (and log loss for single-label) where they are defined; {} otherwise."""
    from sklearn.metrics import log_loss, roc_auc_score

    n_classes = len(labels)
    if probs.shape != (yt.shape[0], n_classes):
        raise ValueError(f"probs must be (N, {n_classes}), got shape {probs.shape}")
    out: dict[str, float] = {}
    if multi_label:
        # AUC per label needs both classes present; average over the labels where it is.
        aucs = [
            roc_auc_score(yt[:, c], probs[:, c]) for c in labels if 0 < yt[:, c].sum() < yt.shape[0]
        ]
        if aucs:
            out["roc_auc_macro"] = float(np.mean(aucs))
        return out
    # Renormalise defensively: softmax outputs in float16 may not sum to exactly 1.
    p = np.clip(probs, 1e-12, None)
    p = p / p.sum(axis=1, keepdims=True)
    out["log_loss"] = float(log_loss(yt, p, labels=labels))
    present = np.unique(yt)
    if len(present) == n_classes and n_classes >= 2:
        if n_classes == 2:
            out["roc_auc_macro"] = float(roc_auc_score(yt, p[:, 1]))
        else:
            out["roc_auc_macro"] = float(
                roc_auc_score(yt, p, multi_class="ovr", average="macro", labels=labels)
            )
    return out
