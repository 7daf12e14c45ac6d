"""PNG figures of attention maps: a grid with one heatmap per (layer, head), and the rollout.

Drawn on `matplotlib.figure.Figure` with the Agg canvas (never pyplot), so they render
headless and leave pyplot's state alone; files are written to a temp name and renamed.
Row i of a heatmap is the token attending ("from", the query), column j the token attended
to ("to", the key).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.evaluation.run_report.plots import save_png
from tunelab.interpret.attention import select_indices

LABEL_ALL_MAX = 40  # rollout: up to this many tokens every one is labelled, beyond thinned
_MAX_LABEL_CHARS = 14
_CMAP = "Blues"


def _label(text: str) -> str:
    """A token as matplotlib should draw it: shortened, '$' not read as mathtext."""
    text = str(text)
    if len(text) > _MAX_LABEL_CHARS:
        text = text[: _MAX_LABEL_CHARS - 1] + "…"
    return text.replace("$", r"\$")


def _ticks(labels: Sequence[str]) -> tuple[list[int], list[str]]:
    """Tick positions and labels: all of them up to LABEL_ALL_MAX tokens, else about 40."""
    n = len(labels)
    step = 1 if n <= LABEL_ALL_MAX else int(np.ceil(n / LABEL_ALL_MAX))
    pos = list(range(0, n, step))
    return pos, [_label(labels[i]) for i in pos]


def grid_mosaic(
    maps: dict, *, layers: Sequence[int] | None = None, heads: Sequence[int] | None = None
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Tile the chosen (layer, head) maps into one image: one row of panels per layer, one
    column per head (0-based indices, all by default), NaN gaps between panels.
    Returns the (rows, cols) image and the panels as (layer, head, top, left) pixel offsets.
    One image instead of one matplotlib Axes per panel: a 30 x 9 grid renders in a second
    or two instead of minutes."""
    att = np.asarray(maps["attentions"], dtype=np.float32)  # (L, H, T, T)
    rows = select_indices(layers, att.shape[0], "layer")
    cols = select_indices(heads, att.shape[1], "head")
    n = att.shape[2]
    gap = max(1, n // 8)
    image = np.full(
        (len(rows) * (n + gap) - gap, len(cols) * (n + gap) - gap), np.nan, dtype=np.float32
    )
    panels = []
    for r, layer in enumerate(rows):
        for c, head in enumerate(cols):
            top, left = r * (n + gap), c * (n + gap)
            image[top : top + n, left : left + n] = att[layer, head]
            panels.append((layer, head, top, left))
    return image, panels


def _thin(count: int, space_pt: float, font: float) -> int:
    """Label every k-th of `count` tokens so that labels `font` points high do not overlap."""
    return max(1, int(np.ceil(font * 1.2 / max(space_pt, 1e-6))), int(np.ceil(count / 60)))


def attention_grid_figure(
    maps: dict, *, layers: Sequence[int] | None = None, heads: Sequence[int] | None = None
) -> tuple[Any, list[tuple[int, int, int, int]]]:
    """The grid as a Figure with the panels of `grid_mosaic` on one shared colour scale 0..1:
    heads along the top, layers along the right, token labels on the left (rows, "from")
    and bottom (columns, "to") of the panels, every token when they fit, else thinned.
    Returns (figure, panels)."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    image, panels = grid_mosaic(maps, layers=layers, heads=heads)
    rows = sorted({p[0] for p in panels}, key=[p[0] for p in panels].index)
    cols = sorted({p[1] for p in panels}, key=[p[1] for p in panels].index)
    labels = [_label(t) for t in (maps.get("labels") or maps["tokens"])]
    n = len(labels)
    gap = max(1, n // 8)
    # panel side in inches: room for token labels when few, capped so the figure stays sane
    panel = float(min(np.clip(0.13 * min(n, 40), 1.2, 4.0), 60 / len(rows), 40 / len(cols)))
    font = 7.0
    fig = Figure(figsize=(panel * len(cols) + 2.6, panel * len(rows) + 2.2))
    ax = fig.add_axes((0.9 / fig.get_figwidth(), 1.1 / fig.get_figheight(),
                       panel * len(cols) / fig.get_figwidth(),
                       panel * len(rows) / fig.get_figheight()))  # fmt: skip
    cmap = colormaps[_CMAP].with_extremes(bad="white")  # NaN gaps between panels
    shown = ax.imshow(image, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
    for side in ax.spines.values():
        side.set_visible(False)
    step = _thin(n, panel * 72 * n / ((n + gap) * n), font)
    offsets = [i * (n + gap) for i in range(max(len(rows), len(cols)))]
    # at most ~300 labels down the side and ~200 along the bottom: each costs render time
    ystep, xstep = max(step, -(-len(rows) * n // 300)), max(step, -(-len(cols) * n // 200))
    ytick = [o + i for o in offsets[: len(rows)] for i in range(0, n, ystep)]
    xtick = [o + i for o in offsets[: len(cols)] for i in range(0, n, xstep)]
    ax.set_yticks(ytick, [labels[t % (n + gap)] for t in ytick], fontsize=font)
    ax.set_xticks(xtick, [labels[t % (n + gap)] for t in xtick], fontsize=font, rotation=90)
    ax.tick_params(length=0, pad=2)
    top = ax.secondary_xaxis("top")
    top.set_xticks([o + (n - 1) / 2 for o in offsets[: len(cols)]], [f"head {h}" for h in cols])
    right = ax.secondary_yaxis("right")
    right.set_yticks([o + (n - 1) / 2 for o in offsets[: len(rows)]], [f"layer {r}" for r in rows])
    for sec in (top, right):
        sec.tick_params(length=0, labelsize=9)
        for side in sec.spines.values():
            side.set_visible(False)
    bar = fig.add_axes((1 - 0.9 / fig.get_figwidth(), 0.3, 0.15 / fig.get_figwidth(), 0.4))
    fig.colorbar(shown, cax=bar, label="weight")
    fig.suptitle(
        f"{maps.get('model') or 'attention'}: in each panel row i attends to column j ({n} tokens)",
        fontsize=10,
        y=1 - 0.25 / fig.get_figheight(),
    )
    return fig, panels


def plot_attention_grid(
    maps: dict,
    path: str | os.PathLike[str],
    *,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
) -> Path:
    """Write the (layer, head) heatmap grid of `attention_grid_figure` as a PNG."""
    fig, _ = attention_grid_figure(maps, layers=layers, heads=heads)
    # keep the PNG under ~6000 pixels a side
    dpi = int(min(100, 6000 / max(fig.get_figwidth(), fig.get_figheight())))
    return save_png(fig, path, dpi=dpi)


def rollout_figure(maps: dict) -> Any:
    """The rollout heatmap as a Figure (one panel plus its colour bar)."""
    from matplotlib.figure import Figure

    roll = np.asarray(maps["rollout"])  # (T, T)
    labels = list(maps.get("labels") or maps["tokens"])
    pos, names = _ticks(labels)
    side = float(np.clip(0.22 * len(pos) + 2.0, 4.0, 12.0))
    fig = Figure(figsize=(side + 1.5, side + 0.8), layout="constrained")
    ax = fig.add_subplot()
    vmax, note = float(roll.max()), ""
    causal = bool(maps.get("causal", False))
    sink = float(roll[1:, 0].mean()) if len(roll) > 2 else 0.0
    if sink > 0.5:  # the first token soaks up most weight: scale colours to the rest
        visible = np.ones_like(roll, dtype=bool)  # (T, T); a decoder sees only j <= i
        if causal:
            visible = np.tril(visible)
        rest = roll[:, 1:][visible[:, 1:]]
        vmax = float(np.quantile(rest, 0.98)) or 1.0
        note = (
            f"\ncolours capped at {vmax:.3g} (98th percentile of the other weights): "
            f"the first token takes {sink:.0%} of a row on average"
        )
    image = ax.imshow(roll, cmap=_CMAP, vmin=0.0, vmax=vmax, aspect="equal")
    ax.set_xticks(pos, names, rotation=90, fontsize=8)
    ax.set_yticks(pos, names, fontsize=8)
    ax.set_xlabel("input token (attended to)")
    ax.set_ylabel("position (attending, last layer)")
    fusion = maps.get("head_fusion", "mean")
    ax.set_title(
        f"Attention rollout, heads fused by {fusion} (Abnar & Zuidema 2020){note}", fontsize=10
    )
    fig.colorbar(image, ax=ax, shrink=0.8, label="share", extend="max" if note else "neither")
    return fig


def plot_rollout(maps: dict, path: str | os.PathLike[str]) -> Path:
    """Write the rollout heatmap of `rollout_figure` as a PNG."""
    return save_png(rollout_figure(maps), path, dpi=110)
