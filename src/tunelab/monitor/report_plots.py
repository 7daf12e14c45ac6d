"""PNG figures of the monitor report: statistics per window over time, the confidence
histogram. Built on matplotlib's Figure with the Agg canvas (never pyplot), like the other
reports' plots; each function returns None when there is nothing to draw."""

from __future__ import annotations

import math
from typing import Any

from tunelab.templates import png_uri


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _figure(width: float = 6.4, height: float = 2.6):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def lines(
    series: dict[str, list], title: str, band: tuple[list, list] | None = None, log: bool = False
) -> str:
    """One line per series over window index (None gaps); `band` shades (low, high)."""
    drawn = {k: v for k, v in series.items() if any(_finite(x) for x in v)}
    if not drawn:
        return ""
    fig = _figure()
    ax = fig.add_subplot()
    for name, values in drawn.items():
        xs = [i for i, x in enumerate(values) if _finite(x)]
        ax.plot(xs, [values[i] for i in xs], marker="o", ms=3, label=name)
    if band is not None:
        lo, hi = band
        xs = [i for i in range(len(lo)) if _finite(lo[i]) and _finite(hi[i])]
        if xs:
            ax.fill_between(xs, [lo[i] for i in xs], [hi[i] for i in xs], alpha=0.2)
    if log:
        ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("window")
    ax.legend(fontsize=8)
    return png_uri(fig)


def shares(label_shares: list[dict | None], ref: dict | None, title: str) -> str:
    """Stacked label shares per window, the reference's as the first bar ("ref")."""
    rows = [("ref", ref)] + [(str(i), s) for i, s in enumerate(label_shares)]
    rows = [(n, s) for n, s in rows if isinstance(s, dict) and s]
    if not rows:
        return ""
    labels = sorted({k for _, s in rows for k in s})
    fig = _figure()
    ax = fig.add_subplot()
    bottom = [0.0] * len(rows)
    for label in labels:
        values = [float(s.get(label) or 0.0) for _, s in rows]
        ax.bar([n for n, _ in rows], values, bottom=bottom, label=str(label).replace("$", r"\$"))
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return png_uri(fig)


def histogram(hist: dict | None, title: str) -> str:
    """A confidence histogram {bins: edges, counts}."""
    if not isinstance(hist, dict) or not hist.get("counts"):
        return ""
    edges, counts = list(hist.get("bins") or []), list(hist["counts"])
    if len(edges) != len(counts) + 1:
        edges = [i / len(counts) for i in range(len(counts) + 1)]
    fig = _figure(4.0, 2.4)
    ax = fig.add_subplot()
    widths = [b - a for a, b in zip(edges, edges[1:])]
    ax.bar(edges[:-1], counts, width=widths, align="edge", edgecolor="white")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("top-class probability")
    return png_uri(fig)
