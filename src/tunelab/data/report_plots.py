"""PNG figures for the data report, returned as bytes to embed in the HTML.

Built on `matplotlib.figure.Figure` with the Agg canvas, never pyplot, so they render
headless and leave the caller's pyplot state alone. Each function returns None when its
section has nothing to draw, and the report then leaves the figure out.
"""

from __future__ import annotations

import io
from typing import Any

_MAX_LABEL_CHARS = 24
_MAX_BARS = 25


def _display(label: Any) -> str:
    """A label as matplotlib should draw it: shortened, and with '$' not read as mathtext."""
    text = str(label)
    if len(text) > _MAX_LABEL_CHARS:
        text = text[: _MAX_LABEL_CHARS - 1] + "…"
    return text.replace("$", r"\$")


def _png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def histogram_png(stats: dict, title: str, xlabel: str, limit: float | None = None) -> bytes | None:
    """Bars of `stats["histogram"]`, dashed lines at p50/p90, and a red line at `limit`
    (max_length) so the share that would be truncated is visible at a glance."""
    hist = (stats or {}).get("histogram") or {}
    edges, counts = hist.get("edges") or [], hist.get("counts") or []
    if len(edges) != len(counts) + 1 or not counts:
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 3.2))
    ax = fig.add_subplot()
    widths = [b - a for a, b in zip(edges[:-1], edges[1:])]
    ax.bar(edges[:-1], counts, width=widths, align="edge", color="tab:blue", alpha=0.8)
    for q, style in (("p50", ":"), ("p90", "--")):
        if isinstance(stats.get(q), (int, float)):
            ax.axvline(stats[q], color="gray", linestyle=style, label=f"{q} {stats[q]:.0f}")
    if limit is not None:
        ax.axvline(limit, color="tab:red", linewidth=2, label=f"max_length {limit:g}")
    overflow = hist.get("overflow") or 0
    if overflow:  # in the title: inside the axes it would collide with the max_length line
        title += f"  (+{overflow:,} rows beyond {edges[-1]:,.0f}, not drawn)"
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("rows")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3, axis="y")
    return _png(fig)


def bars_png(counts: dict, title: str, xlabel: str = "rows") -> bytes | None:
    """Horizontal bars, largest on top; beyond `_MAX_BARS` entries the rest are summed."""
    items = [(str(k), v) for k, v in (counts or {}).items() if isinstance(v, (int, float)) and v]
    if not items:
        return None
    items.sort(key=lambda kv: -kv[1])
    if len(items) > _MAX_BARS:
        rest = sum(v for _, v in items[_MAX_BARS - 1 :])
        items = items[: _MAX_BARS - 1] + [(f"({len(items) - _MAX_BARS + 1} more)", rest)]
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 0.9 + 0.32 * len(items)))
    ax = fig.add_subplot()
    names = [_display(k) for k, _ in items][::-1]
    values = [v for _, v in items][::-1]
    bars = ax.barh(range(len(items)), values, color="tab:blue", alpha=0.85)
    ax.set_yticks(range(len(items)), labels=names)
    total = sum(values)
    ax.bar_label(bars, labels=[f"{v:,} ({v / total:.0%})" for v in values], fontsize=8, padding=3)
    ax.set_xlim(0, max(values) * 1.25)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def group_shares_png(groups: dict, max_groups: int = 20) -> bytes | None:
    """Stacked horizontal bars: each group's label shares (largest groups first), so a
    label that dominates one group but not another stands out."""
    table = {
        str(g): c
        for g, c in (groups or {}).items()
        if g != "bias" and isinstance(c, dict) and c and "rows" not in c
    }
    if not table:
        return None
    sizes = {g: sum(c.values()) for g, c in table.items()}
    names = sorted(table, key=lambda g: -sizes[g])[:max_groups][::-1]
    labels = sorted({lab for g in names for lab in table[g]})
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 1.2 + 0.35 * len(names)))
    ax = fig.add_subplot()
    left = [0.0] * len(names)
    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    for k, lab in enumerate(labels):
        shares = [table[g].get(lab, 0) / sizes[g] if sizes[g] else 0.0 for g in names]
        ax.barh(range(len(names)), shares, left=left, label=_display(lab), color=cmap(k % 20))
        for y, (x0, s) in enumerate(zip(left, shares)):
            if s >= 0.08:
                ax.text(x0 + s / 2, y, f"{s:.0%}", ha="center", va="center", fontsize=7)
        left = [a + b for a, b in zip(left, shares)]
    ax.set_yticks(range(len(names)), labels=[f"{_display(g)} (n={sizes[g]:,})" for g in names])
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the group's label occurrences")
    ax.set_title("label shares per group")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)
