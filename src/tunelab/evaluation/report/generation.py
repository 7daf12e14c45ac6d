"""The "Generation" part of the `tunelab eval` report, for causal-lm and seq2seq models.

Reads only `RowOutputs.details` as rows_generate.py fills them ("per_row", "lengths",
"distributions", "finish"), so it works the same from a report.json read back. Several models
are compared row by row: rows_generate keeps the file's row numbers, and a row shows up in
the side-by-side tables only where every model generated for it. Every string from a file or
a model is HTML-escaped.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tunelab.evaluation.report.rows import RowOutputs
from tunelab.evaluation.run_report.page import _esc, _fmt, _png_uri

CELL_CHARS = 600  # texts longer than this are shortened in the tables (report.json has them whole)
_CSS = (
    "<style>table.gen td{text-align:left;vertical-align:top;white-space:pre-wrap;"
    "max-width:26em;font-size:13px}table.gen th{text-align:left}"
    "table.gen td.num,table.gen th.num{text-align:right}"
    "table.gen .score{color:#777;font-size:12px}</style>"
)


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


def _lengths_table(models: list[RowOutputs]) -> str:
    cols = ("mean", "median", "p90", "max")
    head = (
        "<tr><th>model</th><th class=num>rows</th>"
        + "".join(f"<th class=num>{c}</th>" for c in cols)
        + "<th class=num>ratio to reference</th><th class=num>stop rate</th>"
        "<th>finish (eos / stop / length)</th></tr>"
    )
    body = ""
    for o in models:
        stats, lengths = o.details["lengths"]["generated"], o.details["lengths"]
        finish = o.details.get("finish") or {}
        finish_text = " / ".join(str(finish.get(k, 0)) for k in ("eos", "stop", "length"))
        body += (
            f"<tr><td>{_esc(o.name)}</td><td class=num>{len(o.details['per_row'])}</td>"
            + "".join(f"<td class=num>{stats[c]:.1f}</td>" for c in cols)
            + f"<td class=num>{_ratio(lengths.get('ratio'))}</td>"
            + f"<td class=num>{_fmt(o.metrics.get('stop_rate'))}</td>"
            + f"<td>{_esc(finish_text) if finish else '—'}</td></tr>"
        )
    ref = models[0].details["lengths"]["reference"]
    body += (
        f"<tr><td><i>reference</i></td><td class=num>{len(models[0].details['per_row'])}</td>"
        + "".join(f"<td class=num>{ref[c]:.1f}</td>" for c in cols)
        + "<td class=num>1.00</td><td></td><td></td></tr>"
    )
    unit = _esc(models[0].details["lengths"].get("unit", "tokens"))
    return f"<h3>Length ({unit})</h3><table class=gen>{head}{body}</table>"


def _cell(text: str) -> str:
    text = text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"
    return _esc(text)


def _by_row(o: RowOutputs) -> dict[int, dict]:
    return {p["row"]: p for p in o.details["per_row"]}


def _side_by_side(models: list[RowOutputs], rows: list[int], title: str, note: str = "") -> str:
    """prompt | reference | one column per model (its output, token F1 and ROUGE-L) per row."""
    per = [_by_row(o) for o in models]
    head = (
        "<tr><th>row</th><th>prompt</th><th>reference</th>"
        + "".join(f"<th>{_esc(o.name)}</th>" for o in models)
        + "</tr>"
    )
    body = ""
    for row in rows:
        first = next(p[row] for p in per if row in p)
        cells = ""
        for p in per:
            r = p.get(row)
            if r is None:
                cells += "<td class=score>not generated</td>"
                continue
            finish = f", ended by {r['finish']}" if r.get("finish") else ""
            cells += (
                f"<td>{_cell(r['generated'])}<br><span class=score>F1 {r['token_f1']:.1f}, "
                f"ROUGE-L {r['rougeL']:.1f}{_esc(finish)}</span></td>"
            )
        body += (
            f"<tr><td class=num>{row}</td><td>{_cell(first['prompt'])}</td>"
            f"<td>{_cell(first['reference'])}</td>{cells}</tr>"
        )
    note = f"<p class=muted>{note}</p>" if note else ""
    return f"<h3>{_esc(title)}</h3>{note}<table class=gen>{head}{body}</table>"


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
    models = _generated(outputs)
    if not models:
        return ""
    parts = [_CSS, "<h2>Generation</h2>"]
    if figure_dir is not None:
        png = plot_generation(models, Path(figure_dir) / "generation.png")
        parts.append(f'<img alt="generation metrics" src="{_png_uri(png)}">')
    else:
        with tempfile.TemporaryDirectory(prefix="tunelab-gen-") as tmp:
            png = plot_generation(models, Path(tmp) / "generation.png")
            parts.append(f'<img alt="generation metrics" src="{_png_uri(png)}">')
    parts.append(_lengths_table(models))
    rows = sorted(set().union(*(_by_row(o) for o in models)))[:samples]
    parts.append(_side_by_side(models, rows, "Samples"))
    if len(models) > 1:
        diff = most_different(models, differ)
        if diff:
            note = "rows generated by every model, widest spread of token F1 first"
            parts.append(_side_by_side(models, diff, "Where the models differ most", note))
    return "".join(parts)
