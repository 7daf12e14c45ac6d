"""The run report: one self-contained report.html, and the terminal results table.

The HTML embeds its figures as base64 PNGs and carries its own CSS, so it can be mailed or
archived as a single file and opened offline. Every string that came from the user (label
names, model names, title) is HTML-escaped. Any part of `results` may be missing (a run
without a test split, baselines switched off): that section is simply left out.
"""

from __future__ import annotations

import base64
import html
import os
import tempfile
from pathlib import Path
from typing import Any

from tunelab.evaluation.run_report.plots import plot_confusion_matrix, plot_training_curves

COMPARE_COLUMNS = ("accuracy", "f1_macro", "f1_weighted")
FINE_TUNED = "fine-tuned"
_BASELINE_NAMES = {
    "majority": "majority class",
    "tfidf_logreg": "TF-IDF + logistic regression",
    "linear_probe": "linear probe (frozen encoder)",
}
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;
max-width:1100px;margin:2em auto;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.8em;
border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0}th,td{padding:.3em .8em;border-bottom:1px solid #eee;
text-align:right}th{background:#f6f6f6}td:first-child,th:first-child{text-align:left}
.muted{color:#777}img{max-width:100%;border:1px solid #eee}
"""


def _rows(results: dict[str, Any], split: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(key, display name, metrics) for the fine-tuned model then each baseline with `split`."""
    rows = []
    if isinstance(results.get(split), dict):
        rows.append((FINE_TUNED, FINE_TUNED, results[split]))
    for key, per_split in (results.get("baselines") or {}).items():
        if isinstance(per_split, dict) and isinstance(per_split.get(split), dict):
            rows.append((key, _BASELINE_NAMES.get(key, key), per_split[split]))
    return rows


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def format_results_table(results: dict[str, Any], split: str = "test") -> str:
    """A plain-text table for the terminal: one row per model (fine-tuned first, then the
    baselines in results order), columns accuracy, f1_macro, f1_weighted to 4 decimals."""
    rows = _rows(results, split)
    if not rows:
        return f"no {split} metrics"
    header = ["model", *COMPARE_COLUMNS]
    body = [
        [key] + [f"{v:.4f}" if (v := _num(m.get(c))) is not None else "-" for c in COMPARE_COLUMNS]
        for key, _, m in rows
    ]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return f"{split}\n" + "\n".join(lines)


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if 0 < abs(value) < 1e-3:  # learning rates and the like
            return f"{value:.2e}"
        return f"{value:.4f}" if abs(value) < 100 else f"{value:,.1f}"
    return _esc(value)


def _duration(seconds: Any) -> str:
    s = _num(seconds)
    if s is None:
        return _fmt(seconds)
    minutes, sec = divmod(s, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}h {minutes}m {sec:.0f}s" if hours else f"{minutes}m {sec:.1f}s"


def _kv_table(items: list[tuple[str, str]]) -> str:
    if not items:
        return ""
    body = "".join(f"<tr><th>{_esc(k)}</th><td>{v}</td></tr>" for k, v in items)
    return f"<table>{body}</table>"


def _summary(results: dict[str, Any]) -> str:
    run = results.get("run") if isinstance(results.get("run"), dict) else {}
    timing = results.get("timing") if isinstance(results.get("timing"), dict) else {}
    items: list[tuple[str, str]] = []
    for key, value in run.items():
        if isinstance(value, (dict, list)):
            continue
        if key == "trainable_params" and _num(run.get("total_params")):
            share = 100.0 * float(value) / float(run["total_params"])
            items.append((key, f"{_fmt(value)} <span class=muted>({share:.2f}% of total)</span>"))
        else:
            items.append((key, _fmt(value)))
    for key, value in timing.items():
        if isinstance(value, (dict, list)):
            continue
        items.append((key, _duration(value) if key.endswith("seconds") else _fmt(value)))
    return "<h2>Run</h2>" + (_kv_table(items) or "<p class=muted>no run information</p>")


def _comparison(results: dict[str, Any], split: str) -> str:
    rows = _rows(results, split)
    if not rows:
        return ""
    best = {}
    for c in COMPARE_COLUMNS:
        values = [round(v, 4) for _, _, m in rows if (v := _num(m.get(c))) is not None]
        best[c] = max(values) if values else None
    head = "<tr><th>model</th>" + "".join(f"<th>{c}</th>" for c in COMPARE_COLUMNS) + "</tr>"
    body = ""
    for _, name, metrics in rows:
        cells = ""
        for c in COMPARE_COLUMNS:
            v = _num(metrics.get(c))
            text = _fmt(v)
            if v is not None and round(v, 4) == best[c] and len(rows) > 1:
                text = f"<b>{text}</b>"
            cells += f"<td>{text}</td>"
        body += f"<tr><td>{_esc(name)}</td>{cells}</tr>"
    return f"<h3>{_esc(split)}</h3><table>{head}{body}</table>"


def _baseline_notes(results: dict[str, Any]) -> str:
    """Each baseline's `note` (what fell short of what was asked, e.g. base_few_shot rows that
    had fewer examples in front than eval.few_shot), one paragraph each."""
    notes = [
        (key, b["note"])
        for key, b in (results.get("baselines") or {}).items()
        if isinstance(b, dict) and isinstance(b.get("note"), str)
    ]
    return "".join(
        f"<p class=muted><b>{_esc(_BASELINE_NAMES.get(k, k))}</b>: {_esc(n)}</p>" for k, n in notes
    )


def _all_metrics(results: dict[str, Any]) -> str:
    """Every scalar metric of the fine-tuned model (loss, averages, ...), one column per split."""
    splits = [s for s in ("test", "validation") if isinstance(results.get(s), dict)]
    names = list(
        dict.fromkeys(k for s in splits for k, v in results[s].items() if _num(v) is not None)
    )
    if not names:
        return ""
    head = "<tr><th>metric</th>" + "".join(f"<th>{_esc(s)}</th>" for s in splits) + "</tr>"
    body = "".join(
        f"<tr><td>{_esc(k)}</td>"
        + "".join(f"<td>{_fmt(results[s].get(k))}</td>" for s in splits)
        + "</tr>"
        for k in names
    )
    return f"<h2>Fine-tuned model: all metrics</h2><table>{head}{body}</table>"


def _per_class(metrics: dict[str, Any], split: str) -> str:
    per_class = metrics.get("per_class")
    if not isinstance(per_class, dict) or not per_class:
        return ""
    cols = ("precision", "recall", "f1", "support")
    head = "<tr><th>class</th>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>"
    body = "".join(
        f"<tr><td>{_esc(name)}</td>" + "".join(f"<td>{_fmt(m.get(c))}</td>" for c in cols) + "</tr>"
        for name, m in per_class.items()
        if isinstance(m, dict)
    )
    return f"<h2>Per class ({_esc(split)})</h2><table>{head}{body}</table>"


def _png_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _figures(metrics: dict[str, Any] | None, split: str, records: list[dict[str, Any]]) -> str:
    parts = []
    with tempfile.TemporaryDirectory(prefix="tunelab-report-") as tmp:
        cm = (metrics or {}).get("confusion_matrix")
        names = list(((metrics or {}).get("per_class") or {}).keys())
        if cm and len(cm) == len(names):
            png = plot_confusion_matrix(cm, names, Path(tmp) / "cm.png", title=f"{split} set")
            parts.append(
                f"<h2>Confusion matrix ({_esc(split)})</h2>"
                f'<img alt="confusion matrix" src="{_png_uri(png)}">'
            )
        curves = plot_training_curves(records or [], Path(tmp) / "curves.png")
        if curves is not None:
            parts.append(
                f'<h2>Training curves</h2><img alt="training curves" src="{_png_uri(curves)}">'
            )
    return "".join(parts)


def write_report(
    run_dir: str | os.PathLike[str],
    results: dict[str, Any],
    records: list[dict[str, Any]],
    title: str,
) -> Path:
    """Write run_dir/report.html (atomically) from results.json content and metrics.jsonl
    records: run summary, fine-tuned vs baselines table, per-class table, confusion matrix
    and training curves. Returns the path written."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    results = results or {}
    split = next((s for s in ("test", "validation") if isinstance(results.get(s), dict)), None)
    metrics = results.get(split) if split else None
    comparison = "".join(_comparison(results, s) for s in ("test", "validation"))
    sections = [
        f"<h1>{_esc(title)}</h1>",
        _summary(results),
        "<h2>Fine-tuned vs baselines</h2>"
        + (comparison or "<p class=muted>no evaluation metrics</p>")
        + _baseline_notes(results),
        _all_metrics(results),
        _per_class(metrics, split) if metrics else "",
        _figures(metrics, split or "", records),
    ]
    doc = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(sections)}</body></html>\n"
    )
    path = run_dir / "report.html"
    fd, tmp = tempfile.mkstemp(prefix=".report.html.", suffix=".tmp", dir=run_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(doc)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a report is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
