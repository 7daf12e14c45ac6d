"""The monitor report: report.json (the numbers, a top-level "alerts" list) and report.html
(per-window and over-time plots, the alerts, the most new-looking inputs, a table per slice).

`build_report` takes what windows.py computed; it computes no statistic itself.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tunelab.monitor import report_plots as plots

# (title, dotted statistic) of the per-window table
TABLE = [
    ("rows", "ops.n"),
    ("MMD p", "embedding.mmd_p"),
    ("domain AUC", "embedding.domain_auc"),
    ("PSI", "prediction.psi"),
    ("chi² p", "prediction.chi2_p"),
    ("mean confidence", "prediction.mean_confidence"),
    ("est. accuracy", "estimate.accuracy"),
    ("true accuracy", "estimate.true_accuracy"),
    ("estimate error", "estimate.estimate_error"),
    ("labelled rows", "estimate.n_labelled"),
    ("length mean", "input.length_mean"),
    ("unk rate", "input.unk_rate"),
    ("NLL mean", "generation.nll_mean"),
    ("latency p50 ms", "ops.latency_p50_ms"),
    ("latency p99 ms", "ops.latency_p99_ms"),
    ("error rate", "ops.error_rate"),
]


def lookup(stats: Any, path: str) -> Any:
    """stats["a"]["b"] for "a.b"; None where a section or key is missing."""
    for part in path.split("."):
        if not isinstance(stats, dict):
            return None
        stats = stats.get(part)
    return stats


def _clean(obj: Any) -> Any:
    """JSON-safe: numpy scalars/arrays to Python, NaN/inf to None."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def over_time(windows: list[dict]) -> dict[str, list]:
    """Each table statistic as a list over the windows (None where a window has none)."""
    return {path: [lookup(w, path) for w in windows] for _, path in TABLE}


def _fmt(v: Any) -> str:
    from tunelab.templates import sig

    return "—" if v is None else sig(v)


def _table(head: list[str], rows: list[list]) -> dict | None:
    from tunelab.data.report_html import table

    return table(head, rows)


def _figures(windows: list[dict], series: dict[str, list]) -> list[tuple[str, str]]:
    s = series
    figs = [
        (
            "Embedding drift",
            plots.lines(
                {"MMD p": s["embedding.mmd_p"], "domain AUC": s["embedding.domain_auc"]},
                "MMD permutation p-value and domain-classifier AUC",
            ),
        ),
        (
            "Predicted-label shares",
            plots.shares(
                [lookup(w, "prediction.label_share") for w in windows],
                lookup(windows[0], "prediction.ref_label_share") if windows else None,
                "predicted-label share per window (ref: validation)",
            ),
        ),
        ("Label PSI", plots.lines({"PSI": s["prediction.psi"]}, "population stability index")),
        (
            "Estimated accuracy",
            plots.lines(
                {
                    "estimated (CBPE)": s["estimate.accuracy"],
                    "true": s["estimate.true_accuracy"],
                    "reference": [lookup(w, "estimate.reference_accuracy") for w in windows],
                },
                "accuracy: label-free estimate with its interval",
                band=(
                    [lookup(w, "estimate.accuracy_low") for w in windows],
                    [lookup(w, "estimate.accuracy_high") for w in windows],
                ),
            ),
        ),
        (
            "Latency",
            plots.lines(
                {"p50": s["ops.latency_p50_ms"], "p99": s["ops.latency_p99_ms"]}, "latency (ms)"
            ),
        ),
        ("Error rate", plots.lines({"error rate": s["ops.error_rate"]}, "share of failed rows")),
        (
            "Input length",
            plots.lines(
                {
                    "mean tokens": s["input.length_mean"],
                    "reference": [lookup(w, "input.ref_length_mean") for w in windows],
                },
                "input length (tokens)",
            ),
        ),
        (
            "Unknown tokens",
            plots.lines(
                {
                    "unk rate": s["input.unk_rate"],
                    "reference": [lookup(w, "input.ref_unk_rate") for w in windows],
                },
                "unknown-token rate",
            ),
        ),
        (
            "Generation NLL",
            plots.lines(
                {
                    "NLL": s["generation.nll_mean"],
                    "reference": [lookup(w, "generation.ref_nll_mean") for w in windows],
                },
                "per-token NLL of the answers",
            ),
        ),
    ]
    if windows:
        last = len(windows) - 1
        figs.append(
            (
                f"Confidence (window {last})",
                plots.histogram(
                    lookup(windows[-1], "prediction.confidence_hist"), "confidence histogram"
                ),
            )
        )
    return [(title, uri) for title, uri in figs if uri]


def _newest(windows: list[dict], rows_by_id: dict[str, dict] | None, limit: int = 10):
    rows = []
    for i, w in enumerate(windows):
        for row_id in (lookup(w, "embedding.newest") or [])[:limit]:
            r = (rows_by_id or {}).get(row_id) or {}
            rows.append(
                [
                    str(i),
                    str(row_id)[:12],
                    r.get("text") or "(text not logged)",
                    r.get("label") or "",
                ]
            )
    return _table(["window", "row id", "text", "label"], rows)


def context(report: dict, rows_by_id: dict[str, dict] | None = None) -> dict:
    """The template context: plain strings and figure URIs."""
    windows = report["windows"]
    per_window = _table(
        ["window", "from", "to"] + [t for t, _ in TABLE],
        [
            [str(w.get("window", i)), _fmt(w.get("start")), _fmt(w.get("end"))]
            + [_fmt(lookup(w, p)) for _, p in TABLE]
            for i, w in enumerate(windows)
        ],
    )
    alerts = _table(
        ["window", "slice", "rule", "observed", "message"],
        [
            [
                _fmt(a.get("window")),
                _fmt(a.get("slice")),
                str(a.get("rule") or a.get("stat")),
                _fmt(a.get("observed")),
                str(a.get("message", "")),
            ]
            for a in report["alerts"]
        ],
    )
    slices = _table(
        ["slice", "value"] + [t for t, _ in TABLE],
        [
            [str(key), str(value)] + [_fmt(lookup(stats, p)) for _, p in TABLE]
            for key, values in report["slices"].items()
            for value, stats in values.items()
        ],
    )
    return {
        "title": f"tunelab monitor: {report['model']}",
        "model": report["model"],
        "summary": [
            ("model", report["model"]),
            ("windows", str(len(windows))),
            ("rows", str(sum(int(lookup(w, "ops.n") or 0) for w in windows))),
            ("alerts", str(len(report["alerts"]))),
        ],
        "alerts": alerts,
        "per_window": per_window,
        "figures": _figures(windows, report["over_time"]),
        "newest": _newest(windows, rows_by_id),
        "slices": slices,
    }


def build_report(
    model: str,
    windows_stats: list[dict],
    slice_stats: dict,
    alerts: list[dict],
    out_dir: str | Path,
    rows_by_id: dict[str, dict] | None = None,
) -> dict:
    """Write out_dir/report.json and report.html; returns the report dict
    {"model", "windows", "slices", "over_time", "alerts"}. `slice_stats` is
    {key: {value: window_stats}}; `rows_by_id` gives the texts of the new-looking rows."""
    from tunelab.atomic import atomic_write_text
    from tunelab.templates import render

    report = _clean(
        {
            "model": model,
            "windows": windows_stats,
            "slices": slice_stats,
            "over_time": over_time(windows_stats),
            "alerts": alerts,
        }
    )
    page = render("monitor_report.html.j2", **context(report, rows_by_id))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "report.json", json.dumps(report, indent=2))
    atomic_write_text(out / "report.html", page)
    return report
