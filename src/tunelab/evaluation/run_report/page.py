"""The run report: one self-contained report.html, and the terminal results table.

The HTML (templates/run_report.html.j2) embeds its figures as base64 PNGs and carries its own
CSS, so it can be mailed or archived as a single file and opened offline. Every string that
came from the user (label names, model names, title) is HTML-escaped by the template. Any part of `results` may be missing (a run
without a test split, baselines switched off): that section is simply left out.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from tunelab.evaluation.run_report.plots import plot_confusion_matrix, plot_training_curves
from tunelab.templates import duration, fmt, png_uri, render

COMPARE_COLUMNS = ("accuracy", "f1_macro", "f1_weighted")
FINE_TUNED = "fine-tuned"
_BASELINE_NAMES = {
    "majority": "majority class",
    "tfidf_logreg": "TF-IDF + logistic regression",
    "linear_probe": "linear probe (frozen encoder)",
}
PER_CLASS_COLUMNS = ("precision", "recall", "f1", "support")


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


def _summary(results: dict[str, Any]) -> list[tuple[str, Any]]:
    run = results.get("run") if isinstance(results.get("run"), dict) else {}
    timing = results.get("timing") if isinstance(results.get("timing"), dict) else {}
    items: list[tuple[str, Any]] = []
    for key, value in run.items():
        if isinstance(value, (dict, list)):
            continue
        if key == "trainable_params" and _num(run.get("total_params")):
            share = 100.0 * float(value) / float(run["total_params"])
            items.append((key, {"text": fmt(value), "note": f"({share:.2f}% of total)"}))
        else:
            items.append((key, fmt(value)))
    for key, value in timing.items():
        if isinstance(value, (dict, list)):
            continue
        items.append((key, duration(value) if key.endswith("seconds") else fmt(value)))
    return items


def _comparison(results: dict[str, Any], split: str) -> dict[str, Any] | None:
    """The split's models (fine-tuned first) with COMPARE_COLUMNS, the best of each bold."""
    rows = _rows(results, split)
    if not rows:
        return None
    best = {}
    for c in COMPARE_COLUMNS:
        values = [round(v, 4) for _, _, m in rows if (v := _num(m.get(c))) is not None]
        best[c] = max(values) if values else None
    table = []
    for _, name, metrics in rows:
        cells = []
        for c in COMPARE_COLUMNS:
            v = _num(metrics.get(c))
            bold = v is not None and round(v, 4) == best[c] and len(rows) > 1
            cells.append({"text": fmt(v), "bold": bold})
        table.append((name, cells))
    return {"split": split, "rows": table}


def _baseline_notes(results: dict[str, Any]) -> list[tuple[str, str]]:
    """Each baseline's `note` (what fell short of what was asked, e.g. base_few_shot rows that
    had fewer examples in front than eval.few_shot), as (display name, note)."""
    return [
        (_BASELINE_NAMES.get(key, key), b["note"])
        for key, b in (results.get("baselines") or {}).items()
        if isinstance(b, dict) and isinstance(b.get("note"), str)
    ]


def _all_metrics(results: dict[str, Any]) -> dict[str, Any] | None:
    """Every scalar metric of the fine-tuned model (loss, averages, ...), one column per split."""
    splits = [s for s in ("test", "validation") if isinstance(results.get(s), dict)]
    names = list(
        dict.fromkeys(k for s in splits for k, v in results[s].items() if _num(v) is not None)
    )
    if not names:
        return None
    rows = [(k, [fmt(results[s].get(k)) for s in splits]) for k in names]
    return {"splits": splits, "rows": rows}


def _per_class(metrics: dict[str, Any], split: str) -> dict[str, Any] | None:
    per_class = metrics.get("per_class")
    if not isinstance(per_class, dict) or not per_class:
        return None
    rows = [
        (name, [fmt(m.get(c)) for c in PER_CLASS_COLUMNS])
        for name, m in per_class.items()
        if isinstance(m, dict)
    ]
    return {"split": split, "columns": PER_CLASS_COLUMNS, "rows": rows}


def _figures(
    metrics: dict[str, Any] | None, split: str, records: list[dict[str, Any]]
) -> dict[str, str | None]:
    """Data URIs of the confusion matrix and the training curves (None where not drawn)."""
    figures: dict[str, str | None] = {"confusion": None, "curves": None}
    with tempfile.TemporaryDirectory(prefix="tunelab-report-") as tmp:
        cm = (metrics or {}).get("confusion_matrix")
        names = list(((metrics or {}).get("per_class") or {}).keys())
        if cm and len(cm) == len(names):
            png = plot_confusion_matrix(cm, names, Path(tmp) / "cm.png", title=f"{split} set")
            figures["confusion"] = png_uri(png)
        curves = plot_training_curves(records or [], Path(tmp) / "curves.png")
        if curves is not None:
            figures["curves"] = png_uri(curves)
    return figures


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
    comparisons = [c for s in ("test", "validation") if (c := _comparison(results, s))]
    doc = render(
        "run_report.html.j2",
        title=title,
        split=split or "",
        summary=_summary(results),
        comparisons=comparisons,
        columns=COMPARE_COLUMNS,
        notes=_baseline_notes(results),
        all_metrics=_all_metrics(results),
        per_class=_per_class(metrics, split) if metrics else None,
        **_figures(metrics, split or "", records),
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
