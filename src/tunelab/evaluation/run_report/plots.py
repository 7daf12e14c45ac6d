"""PNG figures for a run: confusion matrix and training curves.

Figures are built on `matplotlib.figure.Figure` and rendered by the Agg backend, never
through pyplot, so they work headless and leave the caller's pyplot state alone. Files are
written atomically (temp file in the same directory, then os.replace) so a crash never
leaves a half-written PNG behind.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

_EVAL_SPLITS = ("validation", "eval", "val")
_MAX_LABEL_CHARS = 24


def save_png(fig: Any, path: str | os.PathLike[str], dpi: int = 110) -> Path:
    """Write `fig` as a PNG at `path` atomically (temp file, then rename), readable by all."""
    import warnings

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # attach an Agg canvas explicitly: no dependency on pyplot's backend
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Glyph missing" for tokens outside the font
            fig.savefig(fh, format="png", dpi=dpi, bbox_inches="tight")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _display(label: Any) -> str:
    """A label as matplotlib should draw it: shortened, and with '$' not read as mathtext."""
    text = str(label)
    if len(text) > _MAX_LABEL_CHARS:
        text = text[: _MAX_LABEL_CHARS - 1] + "…"
    return text.replace("$", r"\$")


def plot_confusion_matrix(
    cm: list[list[int]],
    label_names: list[str],
    path: str | os.PathLike[str],
    title: str = "",
) -> Path:
    """Draw a confusion matrix (rows = true, cols = predicted) as a PNG at `path`.

    Cells show raw counts; colour is the row-normalised share, so a small class's errors
    are as visible as a large one's. Figure and font sizes scale for 2..30+ classes.
    """
    import numpy as np
    from matplotlib.figure import Figure

    counts = np.asarray(cm, dtype=np.int64)
    k = counts.shape[0]
    if counts.ndim != 2 or counts.shape != (k, k) or k != len(label_names):
        raise ValueError(
            f"confusion matrix must be {len(label_names)}x{len(label_names)}, got {counts.shape}"
        )
    row_sums = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, row_sums, out=np.zeros(counts.shape), where=row_sums > 0)

    side = min(max(4.0, 0.45 * k + 2.5), 16.0)
    font = min(11.0, max(6.5, 200.0 / k))  # cell counts
    tick_font = min(11.0, max(7.5, 240.0 / k))
    fig = Figure(figsize=(side + 1.2, side))
    ax = fig.add_subplot()
    im = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("share of true class")
    names = [_display(n) for n in label_names]
    tilt = {"rotation": 45, "ha": "right", "rotation_mode": "anchor"} if k > 3 else {}
    ax.set_xticks(range(k), labels=names, fontsize=tick_font, **tilt)
    ax.set_yticks(range(k), labels=names, fontsize=tick_font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title.replace("$", r"\$"))
    for i in range(k):
        for j in range(k):
            colour = "white" if share[i, j] > 0.5 else "black"
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", color=colour, fontsize=font)
    return save_png(fig, path)


def _series(records: list[dict[str, Any]], splits: tuple[str, ...], key: str) -> tuple[list, list]:
    steps, values = [], []
    for rec in records:
        value = rec.get(key)
        if rec.get("split") not in splits or "step" not in rec or value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            continue
        steps.append(rec["step"])
        values.append(float(value))
    return steps, values


def _smooth(values: list[float], alpha: float = 0.9) -> list[float]:
    """Exponential moving average, for a readable trend through noisy per-step train loss."""
    out, avg = [], values[0]
    for v in values:
        avg = alpha * avg + (1 - alpha) * v
        out.append(avg)
    return out


def plot_training_curves(
    records: list[dict[str, Any]], path: str | os.PathLike[str]
) -> Path | None:
    """Plot a run's metrics.jsonl records as a PNG: loss | validation metrics | learning rate.

    Left: train loss (raw and smoothed) and validation loss vs step. Middle: validation
    accuracy and f1_macro vs step. Right: learning rate. Returns None (and writes nothing)
    when there are no records or none of them holds anything to plot.
    """
    if not records:
        return None
    train_loss = _series(records, ("train",), "loss")
    val_loss = _series(records, _EVAL_SPLITS, "loss")
    val_metrics = {m: _series(records, _EVAL_SPLITS, m) for m in ("accuracy", "f1_macro")}
    lr = _series(records, ("train",), "lr")
    if not any(s[0] for s in (train_loss, val_loss, lr, *val_metrics.values())):
        return None

    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.2))
    ax_loss, ax_metric, ax_lr = fig.subplots(1, 3, gridspec_kw={"width_ratios": [3, 3, 2]})
    if train_loss[0]:
        many = len(train_loss[1]) > 20
        ax_loss.plot(*train_loss, color="tab:blue", alpha=0.35 if many else 1.0, label="train")
        if many:
            ax_loss.plot(
                train_loss[0], _smooth(train_loss[1]), color="tab:blue", label="train (EMA)"
            )
    if val_loss[0]:
        ax_loss.plot(*val_loss, "o-", color="tab:orange", label="validation")
    ax_loss.set_title("loss")
    for (name, (steps, values)), colour in zip(
        val_metrics.items(), ("tab:green", "tab:purple"), strict=True
    ):
        if steps:
            ax_metric.plot(steps, values, "o-", color=colour, label=name)
    ax_metric.set_title("validation metrics")
    if lr[0]:
        ax_lr.plot(*lr, color="tab:gray")
        ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    ax_lr.set_title("learning rate")
    for ax in (ax_loss, ax_metric, ax_lr):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        elif not ax.lines:
            ax.text(
                0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="gray"
            )
    fig.tight_layout()
    return save_png(fig, path)
