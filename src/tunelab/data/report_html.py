"""HTML of the data report: one self-contained page, warnings first, figures embedded.

The page carries its own CSS and embeds its figures as base64 PNGs, so it can be mailed or
archived as one file and opened offline. Every string that came from the data (texts,
labels, group values, column names) is HTML-escaped, and control characters are shown as
visible symbols (U+2400 block) instead of vanishing. Any section may be missing (no label
column, no tokenizer, no prepare stage): it is simply left out.
"""

from __future__ import annotations

import base64
import html
import json
import re
from typing import Any

from tunelab.data import report_plots as plots

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;
max-width:1100px;margin:2em auto;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.8em;
border-bottom:1px solid #ddd;padding-bottom:.2em}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.6em 0}th,td{padding:.3em .8em;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}th{background:#f6f6f6}.n{text-align:right}
td.t{max-width:680px;word-break:break-word}table.kv th{text-align:left}
mark{background:#fdd;color:#a00;font-family:monospace;padding:0 .15em;border-radius:2px}
.muted{color:#777}img{max-width:100%;border:1px solid #eee;display:block;margin:.5em 0}
.warn{background:#fff4e5;border-left:5px solid #e67e22;padding:.5em 1em;margin:1em 0}
.warn li{margin:.25em 0}.ok{background:#eef8ee;border-left:5px solid #3a3;padding:.5em 1em}
"""
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_NUMBER = re.compile(r"[-+]?[\d,.]+%?|—")
PII_META = ("rows_with_pii", "examples", "warnings")


def d(x: Any) -> dict:
    """`x` if it is a dict, else {}: sections may be missing or malformed."""
    return x if isinstance(x, dict) else {}


def esc(value: Any) -> str:
    """Escape for HTML; control characters become a visible, highlighted escape (\\x07),
    since a browser would otherwise drop them or draw an empty box."""
    text = html.escape(str(value), quote=True)  # leaves control characters alone
    return _CONTROL.sub(lambda m: f"<mark>\\x{ord(m.group()):02x}</mark>", text)


def fmt(value: Any) -> str:
    """A value as escaped HTML text: thousands separators, 3 significant digits for small
    floats, "—" for None, JSON for lists/dicts."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value.is_integer() or abs(value) >= 100:
            return f"{value:,.0f}" if value.is_integer() else f"{value:,.1f}"
        return f"{value:.3g}"
    if isinstance(value, (dict, list)):
        return esc(json.dumps(value, default=str, ensure_ascii=False))
    return esc(value)


def _pct(value: Any) -> str:
    return (
        f"{value:.1%}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "—"
    )


def table(head: list[str], rows: list[list[str]], text_cols: tuple[int, ...] = ()) -> str:
    """A table of already-escaped cells. Columns whose cells are all numbers are right-
    aligned; those in `text_cols` hold long texts (wrapped, wider)."""
    if not rows:
        return ""
    num = [all(_NUMBER.fullmatch(r[i]) for r in rows if i < len(r)) for i in range(len(head))]

    def cls(i: int) -> str:
        return " class=n" if num[i] else " class=t" if i in text_cols else ""

    th = "".join(f"<th{cls(i)}>{esc(h)}</th>" for i, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(r)) + "</tr>" for r in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


def kv_table(items: list[tuple[str, str]]) -> str:
    """A two-column key/value table of already-escaped values."""
    if not items:
        return ""
    body = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in items)
    return f"<table class=kv>{body}</table>"


def _img(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _warnings(report: dict) -> str:
    items = [w for w in report.get("warnings") or [] if w]
    if not items:
        return '<div class="ok">No warnings: nothing in this data needs attention.</div>'
    lis = "".join(f"<li>{esc(w)}</li>" for w in items)
    return f'<h2>Warnings</h2><div class="warn"><ul>{lis}</ul></div>'


def _summary(r: dict) -> str:
    text, chars, toks = d(r.get("text")), d(r.get("length_chars")), d(r.get("length_tokens"))
    labels, dup, pii = d(r.get("labels")), d(r.get("duplicates")), d(r.get("pii"))
    items: list[tuple[str, str]] = [
        ("source", fmt(r.get("source"))),
        ("rows", fmt(r.get("rows"))),
    ]
    if r.get("columns"):
        items.append(("columns", esc(", ".join(map(str, d(r.get("columns")))))))
    if text:
        items.append(
            (
                "empty / whitespace-only texts",
                f"{fmt(text.get('empty'))} / {fmt(text.get('whitespace_only'))}",
            )
        )
    if chars:
        items.append(
            (
                "length in characters (p50 / p90 / max)",
                " / ".join(fmt(chars.get(k)) for k in ("p50", "p90", "max")),
            )
        )
    if toks:
        items.append(
            (
                "length in tokens (p50 / p90 / max)",
                " / ".join(fmt(toks.get(k)) for k in ("p50", "p90", "max")),
            )
        )
        items.append(
            (f"truncated at {toks.get('max_length')} tokens", _pct(toks.get("truncated_share")))
        )
    if labels:
        items.append(
            (
                "labels",
                f"{len(d(labels.get('counts')))} (imbalance {fmt(labels.get('imbalance_ratio'))}:1, {fmt(labels.get('missing'))} missing)",
            )
        )
    if dup:
        items.append(
            (
                "exact duplicate rows (groups)",
                f"{fmt(dup.get('exact_rows'))} ({fmt(dup.get('exact_groups'))})",
            )
        )
        items.append(
            (
                "near-duplicate rows (groups)",
                f"{fmt(dup.get('near_rows'))} ({fmt(dup.get('near_groups'))})",
            )
        )
        items.append(
            ("duplicate groups with conflicting labels", fmt(dup.get("conflicting_label_groups")))
        )
    for split, leak in d(r.get("leakage")).items():
        items.append((f"leaked into {split}", f"{fmt(d(leak).get('rows'))} rows"))
    markup = d(r.get("markup"))
    for k in ("html", "control", "mojibake"):
        if k in markup:
            items.append((f"rows with {k}", fmt(markup[k])))
    if pii:
        items.append(("rows with personal data", fmt(pii.get("rows_with_pii"))))
    return "<h2>Summary</h2>" + kv_table(items)


def _columns(r: dict) -> str:
    cols = d(r.get("columns"))
    rows = [[esc(c), esc(d(v).get("dtype")), fmt(d(v).get("missing"))] for c, v in cols.items()]
    return "<h2>Columns</h2>" + table(["column", "dtype", "missing"], rows) if rows else ""


def _lengths(r: dict) -> str:
    chars, toks = d(r.get("length_chars")), d(r.get("length_tokens"))
    out = _img(plots.histogram_png(chars, "text length", "characters"), "character lengths")
    if toks:
        png = plots.histogram_png(toks, "token length", "tokens", limit=toks.get("max_length"))
        out += _img(png, "token lengths")
    return "<h2>Lengths</h2>" + out if out else ""


def _labels(r: dict) -> str:
    labels = d(r.get("labels"))
    if not labels:
        return ""
    counts = d(labels.get("counts"))
    return "<h2>Labels</h2>" + _img(plots.bars_png(counts, "label distribution"), "labels")


def _dup_examples(examples: list) -> str:
    rows = []
    for k, ex in enumerate(examples, 1):
        ex = d(ex)
        for row, text, lab in zip(
            ex.get("rows") or [], ex.get("texts") or [], ex.get("labels") or []
        ):
            rows.append([str(k), esc(ex.get("kind", "")), fmt(row), fmt(lab), esc(text)])
    return table(["group", "kind", "row", "label", "text"], rows, text_cols=(4,))


def _duplicates(r: dict) -> str:
    dup = d(r.get("duplicates"))
    if not dup:
        return ""
    out = (
        f"<h2>Duplicates</h2><p>{fmt(dup.get('exact_rows'))} exact and {fmt(dup.get('near_rows'))}"
        f" near-duplicate rows (beyond the first of each group); "
        f"{fmt(dup.get('conflicting_label_groups'))} groups with conflicting labels.</p>"
    ) + _dup_examples(dup.get("examples") or [])
    for split, leak in d(r.get("leakage")).items():
        leak = d(leak)
        rows = [[fmt(d(e).get("row")), esc(d(e).get("text"))] for e in leak.get("examples") or []]
        out += f"<h3>Leakage into {esc(split)}: {fmt(leak.get('rows'))} rows</h3>"
        out += table([f"row in {split}", "text"], rows, text_cols=(1,))
    return out


def _markup(r: dict) -> str:
    markup = d(r.get("markup"))
    rows = [
        [esc(kind), fmt(d(e).get("row")), esc(d(e).get("text"))]
        for kind, exs in d(markup.get("examples")).items()
        for e in exs or []
    ]
    return (
        "<h2>Markup and encoding</h2>" + table(["kind", "row", "text"], rows, (2,)) if rows else ""
    )


def _languages(r: dict) -> str:
    lang = d(r.get("languages"))
    png = plots.bars_png(d(lang.get("counts")), f"languages (sample of {lang.get('sample')} rows)")
    return "<h2>Languages</h2>" + _img(png, "languages") if png else ""


def _pii(r: dict) -> str:
    pii = d(r.get("pii"))
    if not pii:
        return ""
    counts = {k: v for k, v in pii.items() if k not in PII_META and isinstance(v, int)}
    out = f"<h2>Personal data</h2><p>{fmt(pii.get('rows_with_pii'))} rows hold personal data.</p>"
    out += _img(plots.bars_png(counts, "personal data matches per type", "matches"), "PII")
    rows = [
        [esc(t), fmt(d(e).get("row")), esc(d(e).get("masked"))]
        for t, exs in d(pii.get("examples")).items()
        for e in exs or []
    ]
    return out + table(["type", "row", "match (masked)"], rows, (2,))


def _groups(r: dict) -> str:
    groups = d(r.get("groups"))
    if not groups:
        return ""
    bias = d(groups.get("bias"))
    out = "<h2>Label balance per group</h2>"
    out += _img(plots.group_shares_png(groups), "label shares per group")
    if bias:
        out += kv_table(
            [(k, _pct(v) if k.endswith(("share", "gap")) else fmt(v)) for k, v in bias.items()]
        )
    per_group = {g: d(c) for g, c in groups.items() if g != "bias"}
    labels = sorted({lab for c in per_group.values() for lab in c})
    rows = [
        [esc(g)] + [fmt(c.get(lab, 0)) for lab in labels] for g, c in list(per_group.items())[:50]
    ]
    return out + table(["group", *labels], rows)


def head_sections(r: dict) -> list[str]:
    """What to read first: the warnings, then the summary table."""
    return [_warnings(r), _summary(r)]


def data_sections(r: dict) -> list[str]:
    """The detail sections with their figures, in reading order."""
    return [
        _lengths(r),
        _labels(r),
        _duplicates(r),
        _markup(r),
        _languages(r),
        _pii(r),
        _groups(r),
        _columns(r),
    ]
