"""The training-diagnosis figure: losses, the selection metric, the learning rate, and where
each finding happened (diagnosis.py decides the findings; this only draws them)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tunelab.evaluation.diagnosis.rules import EVAL_SPLITS, series, smooth
from tunelab.evaluation.run_report.plots import _display, save_png

_KIND_COLOURS = {
    "divergence": "tab:red",
    "lr_too_high": "tab:red",
    "lr_too_low": "tab:brown",
    "overfitting": "tab:purple",
    "underfitting": "tab:olive",
}


def plot_diagnosis(
    records: list[dict[str, Any]], diagnosis: dict[str, Any], path: str | os.PathLike[str]
) -> Path:
    """Draw the diagnosis of one run as a PNG at `path`.

    Top: train loss (raw, faint, and smoothed the way the rules see it) and validation loss over
    steps; the judged validation metric on a second axis; a green line at best_step and a
    labelled dotted line at each finding's step. Bottom: the learning rate. NaN/inf losses are
    left out of the lines (the divergence marker shows where they began).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 6))
    ax, ax_lr = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    t_steps, t_loss = series(records, ("train",), "loss")
    v_steps, v_loss = series(records, EVAL_SPLITS, "loss")
    if t_steps.size:
        ax.plot(t_steps, t_loss, color="tab:blue", alpha=0.3, label="train")
        ax.plot(t_steps, smooth(t_loss), color="tab:blue", label="train (smoothed)")
    if v_steps.size:
        ax.plot(v_steps, v_loss, "o-", color="tab:orange", label="validation")
    ax.set_ylabel("loss")
    handles, labels = ax.get_legend_handles_labels()

    metric = (diagnosis.get("metric") or {}).get("name")
    if metric and metric != "loss":
        m_steps, m_values = series(records, EVAL_SPLITS, metric)
        if m_steps.size:
            ax_m = ax.twinx()
            ax_m.plot(m_steps, m_values, "s--", color="tab:green", label=f"validation {metric}")
            ax_m.set_ylabel(_display(metric))
            h, lab = ax_m.get_legend_handles_labels()
            handles, labels = handles + h, labels + [_display(x) for x in lab]

    all_steps = [r["step"] for r in records if isinstance(r.get("step"), (int, float))]
    right_edge = 0.8 * max(all_steps, default=0)  # labels right of this go leftwards

    def label(step: float, text: str, y: float, colour: str) -> None:
        left = step > right_edge
        ax.annotate(
            text, (step, y), xycoords=("data", "axes fraction"), color=colour, fontsize=8,
            ha="right" if left else "left", va="center", xytext=(-3 if left else 3, 0),
            textcoords="offset points",
        )  # fmt: skip

    best = diagnosis.get("best_step")
    if best is not None:
        for a in (ax, ax_lr):
            a.axvline(best, color="tab:green", linewidth=1.2)
        label(best, f"best (step {best})", 0.04, "tab:green")
    marked: dict[float, int] = {}  # step -> labels already drawn there, to stack them
    for f in diagnosis.get("findings", []):
        if f.get("step") is None:
            continue
        step, colour = f["step"], _KIND_COLOURS.get(f["kind"], "tab:gray")
        for a in (ax, ax_lr):
            a.axvline(step, color=colour, linestyle=":", linewidth=1.2)
        row = marked.get(step, 0)
        marked[step] = row + 1
        label(step, f["kind"], 0.95 - 0.07 * row, colour)
    if handles:
        ax.legend(
            handles, labels, fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.01),
            ncol=len(handles), frameon=False,
        )  # fmt: skip
    else:
        ax.text(0.5, 0.5, "no losses logged", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle("training diagnosis")
    ax.grid(alpha=0.3)

    lr_steps, lr = series(records, ("train",), "lr")
    if lr_steps.size:
        ax_lr.plot(lr_steps, lr, color="tab:gray")
        ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    else:
        ax_lr.text(0.5, 0.5, "no lr logged", ha="center", va="center", transform=ax_lr.transAxes)
    ax_lr.set_ylabel("lr")
    ax_lr.set_xlabel("step")
    ax_lr.grid(alpha=0.3)
    fig.tight_layout()
    return save_png(fig, path)
