"""The data report: report.json for programs, report.html for people, a summary for terminals.

The JSON is the report dict as is (inspect_frame builds it from JSON types only, so it loads
back equal); the HTML (templates/data_report.html.j2, its context from report_html.py) puts
the warnings first, since they are what a person should act on. Both files are written atomically: a reader sees the old report or the new.
"""

from __future__ import annotations

from pathlib import Path

from tunelab.atomic import atomic_write_json, atomic_write_text
from tunelab.data import report_html
from tunelab.data.report_html import PII_META, d
from tunelab.templates import render


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


def render_html(report: dict, title: str = "tunelab data report") -> str:
    """The whole report as one HTML document (figures embedded)."""
    return render("data_report.html.j2", **report_html.context(report, title))


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
