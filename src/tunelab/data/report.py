"""The data report: report.json for programs, report.html for people, a summary for terminals.

The JSON is the report dict as is (inspect_frame builds it from JSON types only, so it loads
back equal); the HTML (report_html.py) puts the warnings first, since they are what a person
should act on. Both files are written atomically: a reader sees the old report or the new.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tunelab.data.report_html as h
from tunelab.atomic import atomic_write_json, atomic_write_text
from tunelab.data.report_html import PII_META, d


def write_data_report(
    report: dict, out_dir: Path, title: str = "tunelab data report"
) -> tuple[Path, Path]:
    """Write out_dir/report.json and out_dir/report.html, each atomically; return both paths.

    The HTML is rendered first, so a report that cannot be rendered leaves no new files.
    """
    out_dir = Path(out_dir)
    page = render_html(report, title)
    json_path, html_path = out_dir / "report.json", out_dir / "report.html"
    atomic_write_json(json_path, report)
    atomic_write_text(html_path, page)
    return json_path, html_path


def _prepare(r: dict) -> str:
    """The prepare stage: its totals, one row per step, and rows and labels per split."""
    prep = d(r.get("prepare"))
    if not prep:
        return ""
    out = "<h2>Prepare</h2>"
    scalars = [(k, v) for k, v in prep.items() if not isinstance(v, (dict, list))]
    out += h.kv_table([(k, h.fmt(v)) for k, v in scalars])
    steps = [s for s in prep.get("steps") or [] if isinstance(s, dict)]
    cols = ("step", "rows_in", "rows_out", "changed")
    rows = [
        [h.fmt(s.get(c)) for c in cols]
        + [_details(s.get("details"))]
        + [_details({k: v for k, v in s.items() if k not in (*cols, "details")})]
        for s in steps
    ]
    head = [*cols, "details", "other"]
    if rows and not any(r[-1] for r in rows):  # no step has extra keys: drop the column
        head, rows = head[:-1], [r[:-1] for r in rows]
    out += "<h3>Steps</h3>" + h.table(head, rows, (4, 5)) if rows else ""
    splits = d(prep.get("splits"))
    labels = sorted({str(lab) for s in splits.values() for lab in d(d(s).get("labels"))})
    rows = [
        [h.esc(n), h.fmt(d(s).get("rows"))]
        + [h.fmt(d(d(s).get("labels")).get(lab, 0)) for lab in labels]
        for n, s in splits.items()
    ]
    if rows:
        out += "<h3>Splits</h3>" + h.table(["split", "rows", *labels], rows)
    if "settings" in prep:
        settings = h.esc(json.dumps(prep["settings"], indent=2, default=str, ensure_ascii=False))
        out += f"<details><summary>settings</summary><pre>{settings}</pre></details>"
    return out


def _details(value: Any) -> str:
    if not value:
        return ""
    if not isinstance(value, dict):
        return h.fmt(value)
    return "<br>".join(f"{h.esc(k)}: {h.fmt(v)}" for k, v in value.items())


def render_html(report: dict, title: str = "tunelab data report") -> str:
    """The whole report as one HTML document (figures embedded)."""
    r = d(report)
    sections = [
        f"<h1>{h.esc(title)}</h1><p class=muted>{h.esc(r.get('source') or '')}</p>",
        *h.head_sections(r),
        _prepare(r),
        *h.data_sections(r),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{h.esc(title)}</title><style>{h.CSS}</style></head>"
        f"<body>{''.join(sections)}</body></html>\n"
    )


def format_summary(report: dict) -> str:
    """A short plain-text summary for the terminal: rows, labels, duplicates, leakage,
    personal data, then every warning."""
    r = d(report)
    lines = [f"{r.get('source') or 'data'}: {r.get('rows', 0):,} rows"]
    text = d(r.get("text"))
    if text:
        lines.append(
            f"  empty texts: {text.get('empty', 0)}, whitespace-only: {text.get('whitespace_only', 0)}"
        )
    labels = d(r.get("labels"))
    if labels:
        counts = ", ".join(f"{k} {v:,}" for k, v in list(d(labels.get("counts")).items())[:8])
        ratio = labels.get("imbalance_ratio")
        lines.append(
            f"  labels: {counts or 'none'}" + (f" (imbalance {ratio:.1f}:1)" if ratio else "")
        )
    dup = d(r.get("duplicates"))
    if dup:
        lines.append(
            f"  duplicates: {dup.get('exact_rows', 0)} exact, {dup.get('near_rows', 0)} near, "
            f"{dup.get('conflicting_label_groups', 0)} groups with conflicting labels"
        )
    for split, leak in d(r.get("leakage")).items():
        lines.append(f"  leakage: {d(leak).get('rows', 0)} texts of {split} also in this data")
    pii = d(r.get("pii"))
    if pii:
        found = ", ".join(
            f"{v} {k}" for k, v in pii.items() if k not in PII_META and isinstance(v, int) and v
        )
        lines.append(f"  personal data: {found or 'none found'}")
    prep = d(r.get("prepare"))
    for step in prep.get("steps") or []:
        s = d(step)
        lines.append(f"  step {s.get('step')}: {s.get('rows_in')} -> {s.get('rows_out')} rows")
    warns = r.get("warnings") or []
    lines.append("warnings:" if warns else "no warnings")
    lines += [f"  - {w}" for w in warns]
    return "\n".join(lines)
