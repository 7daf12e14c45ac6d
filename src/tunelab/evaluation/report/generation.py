"""The "Generation" part of the `tunelab eval` report, for causal-lm and seq2seq models.

Reads only `RowOutputs.details` as rows_generate.py fills them ("per_row", "lengths",
"distributions", "finish"), so it works the same from a report.json read back. Several models
are compared row by row: rows_generate keeps the file's row numbers, and a row shows up in
the side-by-side tables only where every model generated for it. The section is
templates/generation.html.j2 (included by the eval page), which HTML-escapes every string from
a file or a model.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tunelab.evaluation.report.rows import RowOutputs
from tunelab.templates import fmt, png_uri, render

CELL_CHARS = 600  # texts longer than this are shortened in the tables (report.json has them whole)
LENGTH_COLUMNS = ("mean", "median", "p90", "max")


def _generated(outputs: list[RowOutputs]) -> list[RowOutputs]:
    return [o for o in outputs if (o.details or {}).get("per_row")]


def plot_generation(outputs: list[RowOutputs], path: str | os.PathLike[str]) -> Path | None:
    """Histograms of per-row token F1, ROUGE-L and generated length (tokens), one outline per
    model overlaid, plus the reference lengths dashed; a PNG at `path`, or None when no model
    generated anything."""
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from tunelab.evaluation.run_report.plots import _display, save_png

    models = _generated(outputs)
    if not models:
        return None
    fig = Figure(figsize=(13, 3.6))
    axes = fig.subplots(1, 3)
    score_bins = np.linspace(0, 100, 11)
    longest = max(max(o.details["distributions"]["gen_tokens"] or [1]) for o in models)
    longest = max(longest, max(models[0].details["distributions"]["ref_tokens"] or [1]))
    len_bins = np.linspace(0, longest, 16)
    for ax, key, bins, label in (
        (axes[0], "token_f1", score_bins, "token F1 (0-100)"),
        (axes[1], "rougeL", score_bins, "ROUGE-L (0-100)"),
        (axes[2], "gen_tokens", len_bins, "length (tokens)"),
    ):
        for o in models:
            values = o.details["distributions"][key]
            ax.hist(values, bins=bins, histtype="step", linewidth=1.8, label=_display(o.name))
        if key == "gen_tokens":
            refs = models[0].details["distributions"]["ref_tokens"]
            ax.hist(refs, bins=bins, histtype="step", linestyle="--", color="black",
                    label="reference")  # fmt: skip
        ax.set_xlabel(label)
        ax.set_ylabel("rows")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, path)


def _ratio(value) -> str:
    return "—" if value is None else f"{value:.2f}"


def _lengths_table(models: list[RowOutputs]) -> dict:
    """Generated length statistics per model and of the references, formatted."""
    rows = []
    for o in models:
        stats, lengths = o.details["lengths"]["generated"], o.details["lengths"]
        finish = o.details.get("finish") or {}
        rows.append(
            {
                "name": o.name,
                "rows": len(o.details["per_row"]),
                "stats": [f"{stats[c]:.1f}" for c in LENGTH_COLUMNS],
                "ratio": _ratio(lengths.get("ratio")),
                "stop_rate": fmt(o.metrics.get("stop_rate")),
                "finish": " / ".join(str(finish.get(k, 0)) for k in ("eos", "stop", "length"))
                if finish
                else "—",
            }
        )
    ref = models[0].details["lengths"]["reference"]
    return {
        "unit": models[0].details["lengths"].get("unit", "tokens"),
        "columns": LENGTH_COLUMNS,
        "rows": rows,
        "reference": {
            "rows": len(models[0].details["per_row"]),
            "stats": [f"{ref[c]:.1f}" for c in LENGTH_COLUMNS],
        },
    }


def _cell(text: str) -> str:
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def _by_row(o: RowOutputs) -> dict[int, dict]:
    return {p["row"]: p for p in o.details["per_row"]}


def _side_by_side(models: list[RowOutputs], rows: list[int], title: str, note: str = "") -> dict:
    """prompt | reference | one column per model (its output, token F1 and ROUGE-L) per row."""
    per = [_by_row(o) for o in models]
    body = []
    for row in rows:
        first = next(p[row] for p in per if row in p)
        outputs = []
        for p in per:
            r = p.get(row)
            outputs.append(
                None
                if r is None
                else {
                    "text": _cell(r["generated"]),
                    "score": f"F1 {r['token_f1']:.1f}, ROUGE-L {r['rougeL']:.1f}"
                    + (f", ended by {r['finish']}" if r.get("finish") else ""),
                }
            )
        body.append(
            {
                "row": row,
                "prompt": _cell(first["prompt"]),
                "reference": _cell(first["reference"]),
                "outputs": outputs,
            }
        )
    return {"title": title, "note": note, "models": [o.name for o in models], "rows": body}


def most_different(models: list[RowOutputs], k: int = 5) -> list[int]:
    """The k rows (generated by every model) with the widest spread of token F1 across the
    models, widest first (ties: file order); rows where all agree are left out."""
    per = [_by_row(o) for o in models]
    common = sorted(set.intersection(*(set(p) for p in per))) if per else []
    spread = {
        row: max(p[row]["token_f1"] for p in per) - min(p[row]["token_f1"] for p in per)
        for row in common
    }
    ranked = sorted((r for r in common if spread[r] > 0), key=lambda r: (-spread[r], r))
    return ranked[:k]


def generation_context(
    outputs: list[RowOutputs],
    *,
    samples: int = 8,
    differ: int = 5,
    figure_dir: str | os.PathLike[str] | None = None,
) -> dict | None:
    """What templates/generation.html.j2 shows (see generation_html); None when no model
    generated anything."""
    models = _generated(outputs)
    if not models:
        return None
    if figure_dir is not None:
        uri = png_uri(plot_generation(models, Path(figure_dir) / "generation.png"))
    else:
        with tempfile.TemporaryDirectory(prefix="tunelab-gen-") as tmp:
            uri = png_uri(plot_generation(models, Path(tmp) / "generation.png"))
    rows = sorted(set().union(*(_by_row(o) for o in models)))[:samples]
    tables = [_side_by_side(models, rows, "Samples")]
    if len(models) > 1:
        diff = most_different(models, differ)
        if diff:
            note = "rows generated by every model, widest spread of token F1 first"
            tables.append(_side_by_side(models, diff, "Where the models differ most", note))
    return {"figure": uri, "lengths": _lengths_table(models), "tables": tables}


def generation_html(
    outputs: list[RowOutputs],
    *,
    samples: int = 8,
    differ: int = 5,
    figure_dir: str | os.PathLike[str] | None = None,
) -> str:
    """The report's generation section: (a) per-row metric and length histograms per model,
    (b) length statistics per model and for the references, (c) the first `samples` rows side
    by side, (d) the `differ` rows where the models' token F1 differs most (two or more
    models). The figure is embedded as a data URI; with `figure_dir` it is also kept there as
    generation.png. "" when no model generated anything."""
    gen = generation_context(outputs, samples=samples, differ=differ, figure_dir=figure_dir)
    return "" if gen is None else render("generation.html.j2", gen=gen)
