"""Does the model's confidence mean what it says? Calibration, reliability diagrams and the
mistakes it was surest about.

A classifier that says 0.9 should be right about 90% of the time at that confidence. Fine-tuned
models usually end up over-confident (the validation loss rises while accuracy still climbs),
which matters when a threshold on the confidence routes rows to a human. The expected
calibration error (ECE) sums that gap over confidence bins, weighted by how many rows land in
each bin.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.evaluation.run_report.plots import _display, save_png


def calibration(confidence: Any, correct: Any, bins: int = 10) -> dict:
    """Calibration of `confidence` (n values in [0, 1]) against `correct` (n bools).

    Bins are equal-width on [0, 1]: bin b holds confidence in [b/bins, (b+1)/bins), the last
    one also holds 1.0. Returns {"ece": sum_b (n_b / N) * |acc_b - conf_b|, "mce": the largest
    |acc_b - conf_b| over non-empty bins, "n": N, "bins": [{"low", "high", "count",
    "confidence": mean confidence, "accuracy": share correct}]}; an empty bin has count 0 and
    None for both means; with N = 0, ece and mce are None.
    """
    conf = np.asarray(confidence, dtype=np.float64).ravel()  # (N,)
    right = np.asarray(correct, dtype=bool).ravel()  # (N,)
    if conf.shape != right.shape:
        raise ValueError(f"{conf.size} confidences but {right.size} correct flags")
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    if conf.size and (not np.all(np.isfinite(conf)) or conf.min() < 0.0 or conf.max() > 1.0):
        raise ValueError("confidence must be finite and within [0, 1]")
    which = np.minimum(np.floor(conf * bins).astype(np.int64), bins - 1)  # (N,) bin of each row
    total = conf.size
    ece, mce, table = 0.0, 0.0, []
    for b in range(bins):
        member = which == b
        count = int(member.sum())
        row = {"low": b / bins, "high": (b + 1) / bins, "count": count}
        if count:
            mean_conf = float(conf[member].mean())
            accuracy = float(right[member].mean())
            gap = abs(accuracy - mean_conf)
            ece += count / total * gap
            mce = max(mce, gap)
            row.update(confidence=mean_conf, accuracy=accuracy)
        else:
            row.update(confidence=None, accuracy=None)
        table.append(row)
    return {
        "ece": float(ece) if total else None,
        "mce": float(mce) if total else None,
        "n": int(total),
        "bins": table,
    }


def plot_reliability(curves: list[tuple[str, dict]], path: str | os.PathLike[str]) -> Path:
    """Reliability diagram of one or more models as a PNG at `path`.

    `curves` is [(model name, calibration(...) result)]. Top panel: accuracy against mean
    confidence per non-empty bin, one line per model (legend: name and ECE), and the diagonal
    a perfectly calibrated model would follow; with a single model the gap to the diagonal is
    shaded. Lower panel: share of rows per confidence bin, per model, so a reader sees which
    bins carry the weight in the ECE.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 6.4))
    ax, ax_hist = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=1, label="perfect calibration")
    colours = [f"C{i % 10}" for i in range(len(curves))]
    width = 1.0 / max(1, len(curves))
    for i, ((name, cal), colour) in enumerate(zip(curves, colours, strict=True)):
        filled = [b for b in cal["bins"] if b["count"]]
        xs = [b["confidence"] for b in filled]
        ys = [b["accuracy"] for b in filled]
        ece = cal.get("ece")
        label = _display(name) + (f" (ECE {ece:.3f})" if ece is not None else "")
        ax.plot(xs, ys, "o-", color=colour, label=label)
        if len(curves) == 1 and xs:
            ax.fill_between(xs, xs, ys, color=colour, alpha=0.15, label="gap")
        total = sum(b["count"] for b in cal["bins"]) or 1
        # grouped bars: each bin's width split between the models
        lows = np.array([b["low"] for b in cal["bins"]])
        bin_w = np.array([b["high"] - b["low"] for b in cal["bins"]])
        shares = [b["count"] / total for b in cal["bins"]]
        ax_hist.bar(
            lows + bin_w * width * i,
            shares,
            width=bin_w * width,
            align="edge",
            color=colour,
            edgecolor="white",
            linewidth=0.5,
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("accuracy")
    ax.set_title("reliability")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax_hist.set_xlabel("confidence")
    ax_hist.set_ylabel("share of rows")
    ax_hist.grid(alpha=0.3)
    fig.tight_layout()
    return save_png(fig, path)


def confident_mistakes(
    texts: list[str], y_true: Any, probs: Any, names: list[str], k: int = 10
) -> list[dict]:
    """The k wrong single-label predictions with the highest predicted probability.

    `y_true` is (n,) label indices into `names` (or the label names themselves), `probs` is
    (n, C) class probabilities. The predicted class is the argmax. Returns at most k dicts,
    most confident first (ties: earlier row first): {"row": 0-based row of the file, "text",
    "label": true label name, "predicted": predicted label name, "confidence": its probability}.
    These are the rows most worth reading: label noise or a systematic blind spot.
    """
    p = np.asarray(probs, dtype=np.float64)  # (n, C)
    if p.ndim != 2 or p.shape[1] != len(names):
        raise ValueError(f"probs must be (n, {len(names)}), got {p.shape}")
    y = np.asarray(y_true)
    if y.dtype.kind in "USO":  # label names: map to indices
        index = {name: i for i, name in enumerate(names)}
        y = np.array([index[str(v)] for v in y], dtype=np.int64)
    y = y.astype(np.int64).ravel()  # (n,)
    if y.shape[0] != p.shape[0] or len(texts) != p.shape[0]:
        raise ValueError(f"{len(texts)} texts, {y.shape[0]} labels, {p.shape[0]} prob rows")
    pred = p.argmax(axis=1)  # (n,)
    conf = p[np.arange(len(pred)), pred]  # (n,)
    wrong = np.flatnonzero(pred != y)
    order = wrong[np.argsort(-conf[wrong], kind="stable")][: max(0, k)]
    return [
        {
            "row": int(i),
            "text": texts[i],
            "label": names[y[i]],
            "predicted": names[pred[i]],
            "confidence": float(conf[i]),
        }
        for i in order
    ]
