"""Diagnosis rules that compare training with validation: overfitting and underfitting.

Thresholds and the Curves container are in diagnosis_rules.py.
"""

from __future__ import annotations

import math

import numpy as np

from tunelab.evaluation.diagnosis.rules import (
    IMPROVING,
    MIN_POINTS,
    NEAR_CHANCE,
    OVERFIT_MARGIN,
    OVERFIT_MIN_EVALS,
    STILL_FALLING,
    TAIL_SHARE,
    Curves,
    finding,
    smooth,
)


def _train_at(c: Curves, steps: np.ndarray) -> np.ndarray | None:
    """Smoothed train loss interpolated at `steps` (None without two finite train values)."""
    ok = np.isfinite(c.train_loss)
    if ok.sum() < 2:
        return None
    return np.interp(steps, c.train_steps[ok], smooth(c.train_loss[ok]))


def _best_index(values: np.ndarray, mode: str) -> int:
    return int(np.argmax(values) if mode == "max" else np.argmin(values))


def overfitting(c: Curves) -> dict | None:
    """Validation loss rose OVERFIT_MARGIN above its minimum, over at least OVERFIT_MIN_EVALS
    evaluations after it, while the (smoothed) train loss kept falling."""
    ok = np.isfinite(c.val_loss)
    steps, loss = c.val_steps[ok], c.val_loss[ok]
    if loss.size < OVERFIT_MIN_EVALS + 1:
        return None
    m = int(np.argmin(loss))
    if loss.size - 1 - m < OVERFIT_MIN_EVALS or loss[-1] <= loss[m] * (1 + OVERFIT_MARGIN):
        return None
    train = _train_at(c, np.array([steps[m], steps[-1]]))
    if train is None or train[1] >= train[0]:
        return None
    best = int(steps[m])
    epoch = c.epochs.get(steps[m])
    at = f"step {best} (" + (f"epoch {epoch:g}, " if isinstance(epoch, (int, float)) else "")
    message = (
        f"validation loss was lowest at {at}loss {loss[m]:.3g}) and rose to {loss[-1]:.3g} by "
        f"step {int(steps[-1])} while training loss kept falling ({train[0]:.3g} -> "
        f"{train[1]:.3g})"
    )
    stop = (
        "stop earlier - keep train.early_stopping enabled (patience 1-2; metric: loss selects "
        "the lowest validation loss)"
        + (f" or set train.epochs to about {max(1, math.ceil(epoch))}" if epoch else "")
        + "; regularize more: raise train.weight_decay (e.g. 0.01 -> 0.1), train.dropout "
        "(method.dropout for LoRA), a smaller method.r; or add training data"
    )
    i = _best_index(c.metric_values, c.mode) if c.metric_values.size else None
    if c.metric and c.metric != "loss" and i is not None and c.metric_steps[i] > steps[m]:
        message += (
            f". Validation {c.metric} still improved after that (best {c.metric_values[i]:.3g} "
            f"at step {int(c.metric_steps[i])}): the predicted labels kept getting better, but "
            "the model grew over-confident on the rows it gets wrong"
        )
        stop = (
            f"if you use only the predicted labels, selecting on {c.metric} is fine; if "
            "you use the probabilities (thresholds, ranking), check the calibration (ECE) "
            "and, to avoid the over-confidence, "
        ) + stop
    else:
        message += ": the model is fitting its training rows, not the task"
    return finding("overfitting", "warning", best, message, stop)


def _near_chance(c: Curves) -> dict | None:
    """Validation accuracy within NEAR_CHANCE of always answering the most common label."""
    rec = c.last_eval or {}
    acc, cm = rec.get("accuracy"), rec.get("confusion_matrix")
    if not isinstance(acc, (int, float)) or not isinstance(cm, list) or not cm:
        return None
    try:
        counts = np.asarray(cm, dtype=np.float64)  # (K, K): rows = true label
    except (TypeError, ValueError):
        return None
    if counts.ndim != 2 or counts.sum() <= 0:
        return None
    majority = float(counts.sum(axis=1).max() / counts.sum())
    if acc > majority + NEAR_CHANCE:
        return None
    return finding(
        "underfitting",
        "warning",
        rec.get("step"),
        f"validation accuracy {acc:.3g} is no better than always answering the most common "
        f"label ({majority:.3g}): the model learned next to nothing",
        "check the labels first (tunelab data inspect), then raise train.lr 3x, train longer "
        "(train.epochs) and give the method more capacity (a larger method.r, more "
        "method.train_layers, or method: full)",
    )


def _improving(values: np.ndarray, mode: str) -> bool:
    """The last value beats every earlier one by more than IMPROVING (relative)."""
    if values.size < 2:
        return False
    last, before = values[-1], values[:-1]
    best = before.max() if mode == "max" else before.min()
    margin = IMPROVING * abs(best)
    return bool(last > best + margin if mode == "max" else last < best - margin)


def underfitting(c: Curves) -> dict | None:
    """Near-chance accuracy, or both curves still improving when training stopped."""
    chance = _near_chance(c)
    if chance:
        return chance
    ok = np.isfinite(c.train_loss)
    if ok.sum() < MIN_POINTS:
        return None
    steps, s = c.train_steps[ok], smooth(c.train_loss[ok])
    tail = steps >= steps[-1] - TAIL_SHARE * (steps[-1] - steps[0])
    start = s[np.flatnonzero(tail)[0]]
    drop = (start - s[-1]) / start if start > 0 else 0.0
    if c.metric and c.metric_values.size >= 2:
        name, values, mode = c.metric, c.metric_values, c.mode
    else:
        name, values, mode = "loss", c.val_loss[np.isfinite(c.val_loss)], "min"
    if drop <= STILL_FALLING or not _improving(values, mode):
        return None
    return finding(
        "underfitting",
        "warning",
        steps[-1],
        f"training stopped while still learning: training loss fell {drop:.0%} over the last "
        f"{TAIL_SHARE:.0%} of the run and validation {name} improved at the last evaluation "
        f"({values[-2]:.3g} -> {values[-1]:.3g})",
        "train longer: raise train.epochs (e.g. 2x) or train.max_steps; with a fixed budget, "
        "raise train.lr or give the method more capacity (a larger method.r, more "
        "method.train_layers)",
    )
