"""The rules of the training diagnosis (diagnosis.py), each a short function over the curves.

Every threshold is a named constant with the reason for its value. They are heuristics, picked
to be explainable in one sentence, not tuned: a finding is a prompt to look at the curve
(diagnosis.png), not a verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

EVAL_SPLITS = ("validation", "eval", "val")

# fewer logged train losses than this and the shape of the curve says nothing
MIN_POINTS = 5
# centred moving average over this share of the logged points (at least 3): irons out the
# batch-to-batch noise while keeping a trend that lasts a tenth of the run
SMOOTH_SHARE = 0.1
# divergence: the smoothed train loss climbs above this multiple of its first logged value
# (a fine-tuning loss starts near its worst; 3x that only happens when the weights blow up)
DIVERGENCE_FACTOR = 3.0
# lr_too_high, spikes: a logged train loss above SPIKE_FACTOR x the median of the SPIKE_WINDOW
# values before it, and higher than that median by SPIKE_MIN_RISE x the first loss (so the
# jitter of an already tiny loss does not count)
SPIKE_FACTOR = 2.0
SPIKE_WINDOW = 5
SPIKE_MIN_RISE = 0.25
# lr_too_high, oscillation: over the first half of the run a straight line fitted to the loss
# ends above NO_PROGRESS_RATIO of its start, while the raw loss scatters around that line by
# more than NOISE_CV of its level (standard deviation of the residual / mean of the line)
NO_PROGRESS_RATIO = 0.95
NOISE_CV = 0.2
# lr_too_low: the smoothed loss ends above SLOW_RATIO of its start over the whole run, with
# a smooth curve (scatter under NOISE_CV): it moves, just barely
SLOW_RATIO = 0.95
# overfitting: validation loss ends OVERFIT_MARGIN (relative) above its minimum, with at least
# OVERFIT_MIN_EVALS evaluations after the minimum, while the train loss kept falling
OVERFIT_MARGIN = 0.05
OVERFIT_MIN_EVALS = 2
# underfitting: over the last TAIL_SHARE of the run the smoothed train loss still fell by more
# than STILL_FALLING (relative), and the last evaluation beat every earlier one by more than
# IMPROVING (relative) - both curves were still going when training stopped
TAIL_SHARE = 0.2
STILL_FALLING = 0.05
IMPROVING = 0.01
# underfitting: validation accuracy within NEAR_CHANCE of always answering the most common label
NEAR_CHANCE = 0.02


@dataclass
class Curves:
    """The series the rules read, sorted by step. Loss arrays keep NaN/inf (divergence)."""

    train_steps: np.ndarray
    train_loss: np.ndarray
    val_steps: np.ndarray
    val_loss: np.ndarray
    metric: str | None
    mode: str
    metric_steps: np.ndarray
    metric_values: np.ndarray
    lr: np.ndarray
    epochs: dict[Any, Any] = field(default_factory=dict)  # eval step -> epoch
    last_eval: dict | None = None


def series(
    records: list[dict], splits: tuple[str, ...], key: str, keep_nonfinite: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of numeric `key` in records of these splits, sorted by step."""
    pairs = []
    for rec in records:
        value, step = rec.get(key), rec.get("step")
        if rec.get("split") not in splits or isinstance(step, bool) or isinstance(value, bool):
            continue
        if not isinstance(step, (int, float)) or not isinstance(value, (int, float)):
            continue
        if keep_nonfinite or math.isfinite(value):
            pairs.append((step, float(value)))
    pairs.sort(key=lambda p: p[0])  # stable: a resumed run's repeated step keeps file order
    steps = np.array([p[0] for p in pairs], dtype=np.float64)
    return steps, np.array([p[1] for p in pairs], dtype=np.float64)


def smooth(values: np.ndarray) -> np.ndarray:
    """Centred moving average (window: SMOOTH_SHARE of the points, odd, >= 3; shrinks at the
    ends). Offline analysis, so centred: no lag, unlike the EMA of a live dashboard."""
    n = len(values)
    half = max(3, int(n * SMOOTH_SHARE)) // 2
    if n < 3:
        return values.astype(np.float64).copy()
    csum = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) + half + 1, 0, n)
    return (csum[hi] - csum[lo]) / (hi - lo)


def finding(kind: str, severity: str, step: Any, message: str, advice: str) -> dict:
    return {
        "kind": kind,
        "severity": severity,
        "step": None if step is None else int(step),
        "message": message,
        "advice": advice,
    }


def _noise(raw: np.ndarray, smoothed: np.ndarray) -> float:
    """Scatter of the raw loss around its smoothed curve, relative to the loss level."""
    level = float(np.mean(np.abs(smoothed)))
    return float(np.std(raw - smoothed)) / level if level > 0 else 0.0


def _lr_text(c: Curves, direction: str) -> str:
    """A concrete range for the advice: the peak lr moved 3-10x `direction` ("down" / "up")."""
    peak = float(c.lr.max()) if c.lr.size else 0.0
    if peak <= 0:
        return ""
    a, b = (peak / 3, peak / 10) if direction == "down" else (peak * 3, peak * 10)
    return f" (the peak was {peak:.2g}: try {a:.2g} to {b:.2g})"


def divergence(c: Curves) -> dict | None:
    """NaN/inf in a loss, or the smoothed train loss above DIVERGENCE_FACTOR x its start."""
    bad = ~np.isfinite(c.train_loss)
    bad_val = ~np.isfinite(c.val_loss)
    advice = (
        "lower train.lr 3-10x" + _lr_text(c, "down") + ", keep gradient clipping on "
        "(train.max_grad_norm: 1.0) and a warmup (train.warmup_ratio: 0.06-0.1); with fp16 "
        "precision try train.precision: bf16 or fp32"
    )
    if bad.any() or bad_val.any():
        step = min(
            c.train_steps[bad][0] if bad.any() else math.inf,
            c.val_steps[bad_val][0] if bad_val.any() else math.inf,
        )
        message = f"the loss became NaN/inf at step {int(step)}: training diverged"
        return finding("divergence", "warning", step, message, advice)
    if c.train_loss.size < 2:
        return None
    s = smooth(c.train_loss)
    over = np.flatnonzero(s > DIVERGENCE_FACTOR * c.train_loss[0])
    if over.size == 0:
        return None
    step = c.train_steps[over[0]]
    return finding(
        "divergence",
        "warning",
        step,
        f"training loss rose above {DIVERGENCE_FACTOR:g}x its first value "
        f"({c.train_loss[0]:.3g} -> {s[over[0]]:.3g} by step {int(step)}): training diverged",
        advice,
    )


def spikes(c: Curves) -> dict | None:
    """Single logged train losses far above the ones just before that then fall back at least
    halfway (lr_too_high); a rise that keeps going is divergence, not a spike."""
    loss = c.train_loss
    hits = []
    for i in range(SPIKE_WINDOW, len(loss) - 1):
        base = np.median(loss[i - SPIKE_WINDOW : i])
        if not np.all(np.isfinite(loss[i - SPIKE_WINDOW : i + 2])):
            continue
        high = loss[i] > SPIKE_FACTOR * base and loss[i] - base > SPIKE_MIN_RISE * loss[0]
        if high and loss[i + 1] < (loss[i] + base) / 2:
            hits.append(i)
    if not hits:
        return None
    first = hits[0]
    return finding(
        "lr_too_high",
        "warning",
        c.train_steps[first],
        f"training loss spiked {len(hits)} time(s), first at step {int(c.train_steps[first])} "
        f"({loss[first]:.3g}, over {SPIKE_FACTOR:g}x the values just before)",
        "lower train.lr 3-10x" + _lr_text(c, "down") + ", lengthen the warmup "
        "(train.warmup_ratio: 0.1) and keep train.max_grad_norm: 1.0",
    )


def oscillation(c: Curves, s: np.ndarray) -> dict | None:
    """A noisy, not falling first half of the run (lr_too_high). `s`: smoothed train loss.

    Judged on a straight line fitted to the first half: its end against its start (robust to
    a noisy first or last value), the raw values' scatter around it against its level."""
    half = len(s) // 2
    if half < MIN_POINTS:
        return None
    x, y = c.train_steps[:half], c.train_loss[:half]
    line = np.polyval(np.polyfit(x, y, 1), x)  # (half,)
    ratio = line[-1] / line[0] if line[0] > 0 else 1.0
    noise = _noise(y, line)
    if ratio <= NO_PROGRESS_RATIO or noise <= NOISE_CV:
        return None
    return finding(
        "lr_too_high",
        "warning",
        x[-1],
        f"over the first half of training the loss jumped around (scatter {noise:.0%} of its "
        f"level) without going down (trend {line[0]:.3g} -> {line[-1]:.3g})",
        "lower train.lr 3-10x" + _lr_text(c, "down") + " and use a warmup "
        "(train.warmup_ratio: 0.1)",
    )


def too_slow(c: Curves, s: np.ndarray) -> dict | None:
    """A smooth curve that barely falls over the whole run (lr_too_low)."""
    ratio = s[-1] / s[0] if s[0] > 0 else 1.0
    noise = _noise(c.train_loss, s)
    if ratio <= SLOW_RATIO or noise > NOISE_CV:
        return None
    peak = float(c.lr.max()) if c.lr.size else None
    if peak == 0.0:
        why = "the learning rate stayed 0 (check train.lr, train.warmup_ratio and the schedule)"
        advice = "set train.lr > 0 and make sure warmup (train.warmup_ratio) ends inside the run"
    else:
        why = "the learning rate is likely too low"
        advice = (
            "raise train.lr 3-10x" + _lr_text(c, "up") + "; LoRA usually trains at 1e-4 to 1e-3, "
            "full fine-tuning at 1e-5 to 5e-5"
        )
    return finding(
        "lr_too_low",
        "warning",
        c.train_steps[-1],
        f"training loss barely moved over the run ({s[0]:.3g} -> {s[-1]:.3g}, "
        f"{1 - ratio:.1%} lower) on a smooth curve: {why}",
        advice,
    )
