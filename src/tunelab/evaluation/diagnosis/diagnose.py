"""What went right or wrong in training, read from a run's metrics.jsonl.

`diagnose` turns the loss curves into findings a user can act on: diverged, learning rate too
high or too low, overfitting, underfitting, or healthy. Each rule is a simple, explainable
heuristic with its threshold as a named constant below (docs/evaluation.md lists them). The
curves are judged after a centred moving average, so one noisy logged value does not decide.
The rules live in diagnosis_rules.py; the figure in diagnosis_plot.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.errors import DataError
from tunelab.evaluation.diagnosis.fit import overfitting, underfitting
from tunelab.evaluation.diagnosis.plot import plot_diagnosis
from tunelab.evaluation.diagnosis.rules import (
    EVAL_SPLITS,
    MIN_POINTS,
    SPIKE_WINDOW,
    Curves,
    divergence,
    finding,
    oscillation,
    series,
    smooth,
    spikes,
    too_slow,
)
from tunelab.metrics.classification import primary_metric_mode

__all__ = ["diagnose", "diagnose_run", "plot_diagnosis", "read_metrics", "run_metric"]

# the metric judged when none is named: the first of these the validation records hold
# (classification f1_macro, token classification f1, then accuracy; mlm perplexity)
_METRIC_GUESSES = ("f1_macro", "f1", "accuracy", "perplexity")


def read_metrics(run_dir: str | os.PathLike[str]) -> list[dict]:
    """The records of `run_dir`/metrics.jsonl (or of that .jsonl file itself), in file order.

    [] when the file does not exist. A line that is not a JSON object raises DataError naming
    the file and the line.
    """
    path = Path(run_dir)
    if path.is_dir() or path.suffix != ".jsonl":
        path = path / "metrics.jsonl"
    if not path.is_file():
        return []
    records = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(str(path), f"not valid JSON ({err.msg})", row=lineno) from None
            if not isinstance(record, dict):
                raise DataError(str(path), "expected a JSON object per line", row=lineno)
            records.append(record)
    return records


def run_metric(run_dir: str | os.PathLike[str]) -> tuple[str | None, str]:
    """(metric, mode) the run selected on: train.early_stopping in its resolved config.yaml.

    (None, "max") when the config is missing or names none, so `diagnose` guesses.
    """
    import yaml

    path = Path(run_dir) / "config.yaml"
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        stop = (cfg.get("train") or {}).get("early_stopping") or {}
    except (OSError, yaml.YAMLError, AttributeError):
        return None, "max"
    metric = stop.get("metric") if isinstance(stop, dict) else None
    if not isinstance(metric, str):
        return None, "max"
    mode = stop.get("mode")
    return metric, mode if mode in ("max", "min") else primary_metric_mode(metric)


def _summary(values: np.ndarray) -> dict[str, float] | None:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    return {"first": float(finite[0]), "last": float(finite[-1]), "min": float(finite.min())}


def _pick_metric(records: list[dict], metric: str | None, mode: str) -> tuple[str | None, str]:
    if metric is not None:
        return metric, mode
    for name in _METRIC_GUESSES:
        if series(records, EVAL_SPLITS, name)[0].size:
            return name, primary_metric_mode(name)
    return None, mode


def diagnose(records: list[dict], *, metric: str | None = None, mode: str = "max") -> dict:
    """Findings about one training run from its metrics.jsonl records.

    `metric` is the validation metric the run selects on (None: f1_macro / f1 / accuracy /
    perplexity, whichever the validation records hold, else losses only), `mode` whether
    larger ("max") or smaller ("min") is better. Returns {"findings": [{"kind", "severity":
    "warning" | "info", "step", "message", "advice"}], "train_loss": {"first", "last", "min"},
    "validation_loss": {...} (None where absent), "gap": last validation loss minus the
    smoothed train loss at that step, "best_step": the evaluation with the best metric (the
    lowest validation loss without one), "metric": {"name", "mode", "best", "last"} or None}.
    Kinds: divergence, lr_too_high, lr_too_low, overfitting, underfitting (warnings);
    too_few_points, healthy (info; healthy only when nothing else was found).
    """
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    name, mode = _pick_metric(records, metric, mode)
    train_steps, train_loss = series(records, ("train",), "loss", keep_nonfinite=True)
    val_steps, val_loss = series(records, EVAL_SPLITS, "loss", keep_nonfinite=True)
    met_steps, met_values = series(records, EVAL_SPLITS, name) if name else (np.array([]),) * 2
    if name == "loss":  # selecting on the validation loss itself
        met_steps, met_values = val_steps[np.isfinite(val_loss)], val_loss[np.isfinite(val_loss)]
    curves = Curves(
        train_steps=train_steps,
        train_loss=train_loss,
        val_steps=val_steps,
        val_loss=val_loss,
        metric=name,
        mode=mode,
        metric_steps=met_steps,
        metric_values=met_values,
        lr=series(records, ("train",), "lr")[1],
        epochs=dict(zip(*series(records, EVAL_SPLITS, "epoch"), strict=True)),
        last_eval=next((r for r in reversed(records) if r.get("split") in EVAL_SPLITS), None),
    )

    best_step = None
    if met_values.size:
        pick = np.argmax(met_values) if mode == "max" else np.argmin(met_values)
        best_step = int(met_steps[pick])
    elif np.isfinite(val_loss).any():
        best_step = int(val_steps[np.nanargmin(np.where(np.isfinite(val_loss), val_loss, np.nan))])

    gap = None
    ok_t, ok_v = np.isfinite(train_loss), np.isfinite(val_loss)
    if ok_t.any() and ok_v.any():
        smoothed = smooth(train_loss[ok_t])
        at = val_steps[ok_v][-1]
        gap = float(val_loss[ok_v][-1] - np.interp(at, train_steps[ok_t], smoothed))

    findings = _run_rules(curves)
    if not findings:
        findings.append(_healthy(curves, best_step))
    met = None
    if name and met_values.size:
        best = met_values.max() if mode == "max" else met_values.min()
        met = {"name": name, "mode": mode, "best": float(best), "last": float(met_values[-1])}
    return {
        "findings": findings,
        "train_loss": _summary(train_loss),
        "validation_loss": _summary(val_loss),
        "gap": gap,
        "best_step": best_step,
        "metric": met,
    }


def _run_rules(c: Curves) -> list[dict]:
    """All findings, in order: divergence, lr_too_high, lr_too_low, overfitting, underfitting."""
    out: list[dict] = []
    diverged = divergence(c)
    spiked = spikes(c) if len(c.train_loss) > SPIKE_WINDOW else None
    out += [f for f in (diverged, spiked) if f]
    if diverged:
        return out  # what follows would read a curve that no longer means anything
    finite = np.isfinite(c.train_loss)
    if finite.sum() < MIN_POINTS:
        message = (
            f"only {int(finite.sum())} training loss value(s) logged: too few to judge the "
            "shape of the curve"
        )
        advice = "log and evaluate more often: lower train.log_steps, set train.eval_steps"
        out.append(finding("too_few_points", "info", None, message, advice))
    else:
        s = smooth(c.train_loss[finite])
        high = None if spiked else oscillation(c, s)
        slow = None if (spiked or high) else too_slow(c, s)
        out += [f for f in (high, slow) if f]
    out += [f for f in (overfitting(c), underfitting(c)) if f]
    return out


def _healthy(c: Curves, best_step: int | None) -> dict:
    t = c.train_loss[np.isfinite(c.train_loss)]
    text = f"training loss fell from {t[0]:.3g} to {t[-1]:.3g}"
    if c.metric and c.metric_values.size:
        text += f"; validation {c.metric} was best at step {best_step}"
    elif best_step is not None:
        text += f"; validation loss was lowest at step {best_step}"
    return finding(
        "healthy",
        "info",
        None,
        text + "; no sign of divergence, a badly set learning rate, over- or underfitting",
        "nothing to fix; to squeeze more out, compare a few train.lr values or a larger method.r",
    )


def diagnose_run(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """`diagnose` on a run folder, judging the metric its config selected on."""
    metric, mode = run_metric(run_dir)
    return diagnose(read_metrics(run_dir), metric=metric, mode=mode)
