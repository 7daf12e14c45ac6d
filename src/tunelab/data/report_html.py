"""What the data report page shows: its context for templates/data_report.html.j2.

The page carries its own CSS and embeds its figures as base64 PNGs, so it can be mailed or
archived as one file and opened offline. The context is plain data (strings, numbers already
formatted as the tables show them, figure URIs); the template escapes every string, and shows
control characters as visible symbols instead of letting them vanish. Any section may be
missing (no label column, no tokenizer, no prepare stage): it is None and the page leaves it
out.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tunelab.data import report_plots as plots
from tunelab.templates import pct, png_uri, sig

_NUMBER = re.compile(r"[-+]?[\d,.]+%?|—")
PII_META = ("rows_with_pii", "examples", "warnings")


def d(x: Any) -> dict:
    """`x` if it is a dict, else {}: sections may be missing or malformed."""
    return x if isinstance(x, dict) else {}


def table(head: list[str], rows: list[list], text_cols: tuple[int, ...] = ()) -> dict | None:
    """A table for the `table` macro: columns whose cells are all numbers are right-aligned
    ("n"); those in `text_cols` hold long texts (wrapped, wider: "t"). None without rows."""
    if not rows:
        return None
    num = [
        all(isinstance(r[i], str) and _NUMBER.fullmatch(r[i]) for r in rows if i < len(r))
        for i in range(len(head))
    ]
    cls = ["n" if num[i] else "t" if i in text_cols else "" for i in range(len(head))]
    return {"head": head, "rows": rows, "cls": cls}


def _lines(value: Any) -> list[str] | str:
    """A dict as "key: value" lines (one cell), anything else as one formatted value."""
    if not value:
        return ""
    if not isinstance(value, dict):
        return sig(value)
    return [f"{k}: {sig(v)}" for k, v in value.items()]


def _summary(r: dict) -> list[tuple[str, str]]:
    text, chars, toks = d(r.get("text")), d(r.get("length_chars")), d(r.get("length_tokens"))
    labels, dup, pii = d(r.get("labels")), d(r.get("duplicates")), d(r.get("pii"))
    items = [("source", sig(r.get("source"))), ("rows", sig(r.get("rows")))]
    if r.get("columns"):
        items.append(("columns", ", ".join(map(str, d(r.get("columns"))))))
    if text:
        pair = f"{sig(text.get('empty'))} / {sig(text.get('whitespace_only'))}"
        items.append(("empty / whitespace-only texts", pair))
    for name, stats in (("characters", chars), ("tokens", toks)):
        if stats:
            three = " / ".join(sig(stats.get(k)) for k in ("p50", "p90", "max"))
            items.append((f"length in {name} (p50 / p90 / max)", three))
    if toks:
        items.append(
            (f"truncated at {toks.get('max_length')} tokens", pct(toks.get("truncated_share")))
        )
    if labels:
        n, ratio = len(d(labels.get("counts"))), sig(labels.get("imbalance_ratio"))
        items.append(("labels", f"{n} (imbalance {ratio}:1, {sig(labels.get('missing'))} missing)"))
    if dup:
        for kind in ("exact", "near"):
            items.append(
                (
                    f"{'exact duplicate' if kind == 'exact' else 'near-duplicate'} rows (groups)",
                    f"{sig(dup.get(f'{kind}_rows'))} ({sig(dup.get(f'{kind}_groups'))})",
                )
            )
        items.append(
            ("duplicate groups with conflicting labels", sig(dup.get("conflicting_label_groups")))
        )
    for split, leak in d(r.get("leakage")).items():
        items.append((f"leaked into {split}", f"{sig(d(leak).get('rows'))} rows"))
    markup = d(r.get("markup"))
    items += [
        (f"rows with {k}", sig(markup[k])) for k in ("html", "control", "mojibake") if k in markup
    ]
    if pii:
        items.append(("rows with personal data", sig(pii.get("rows_with_pii"))))
    return items


def _prepare(r: dict) -> dict | None:
    """The prepare stage: its totals, one row per step, and rows and labels per split."""
    prep = d(r.get("prepare"))
    if not prep:
        return None
    totals = [(k, sig(v)) for k, v in prep.items() if not isinstance(v, (dict, list))]
    steps = [s for s in prep.get("steps") or [] if isinstance(s, dict)]
    cols = ("step", "rows_in", "rows_out", "changed")
    rows = [
        [sig(s.get(c)) if c != "changed" or not isinstance(s.get(c), dict) else _lines(s[c])
         for c in cols]
        + [_lines(s.get("details")), _lines({k: v for k, v in s.items() if k not in (*cols, "details")})]
        for s in steps
    ]  # fmt: skip
    head = [*cols, "details", "other"]
    for i in (5, 4):  # a column no step fills ("details" is often empty): left out
        if rows and not any(row[i] for row in rows):
            head, rows = head[:i] + head[i + 1 :], [row[:i] + row[i + 1 :] for row in rows]
    splits = d(prep.get("splits"))
    labels = sorted({str(lab) for s in splits.values() for lab in d(d(s).get("labels"))})
    split_rows = [
        [str(n), sig(d(s).get("rows"))] + [sig(d(d(s).get("labels")).get(lab, 0)) for lab in labels]
        for n, s in splits.items()
    ]
    settings = prep.get("settings")
    return {
        "totals": totals,
        "steps": table(head, rows, tuple(range(3, len(head)))),
        "splits": table(["split", "rows", *labels], split_rows),
        "settings": None
        if "settings" not in prep
        else json.dumps(settings, indent=2, default=str, ensure_ascii=False),
    }


def _figure(png: bytes | None, alt: str) -> dict | None:
    return {"uri": png_uri(png), "alt": alt} if png else None


def _lengths(r: dict) -> list[dict]:
    chars, toks = d(r.get("length_chars")), d(r.get("length_tokens"))
    figs = [_figure(plots.histogram_png(chars, "text length", "characters"), "character lengths")]
    if toks:
        png = plots.histogram_png(toks, "token length", "tokens", limit=toks.get("max_length"))
        figs.append(_figure(png, "token lengths"))
    return [f for f in figs if f]


def _duplicates(r: dict) -> dict | None:
    dup = d(r.get("duplicates"))
    if not dup:
        return None
    rows = []
    for k, ex in enumerate(dup.get("examples") or [], 1):
        ex = d(ex)
        for row, text, lab in zip(
            ex.get("rows") or [], ex.get("texts") or [], ex.get("labels") or []
        ):
            rows.append([str(k), str(ex.get("kind", "")), sig(row), sig(lab), str(text)])
    leaks = [
        {
            "split": split,
            "rows": sig(d(leak).get("rows")),
            "table": table(
                [f"row in {split}", "text"],
                [[sig(d(e).get("row")), str(d(e).get("text"))] for e in d(leak).get("examples") or []],
                text_cols=(1,),
            ),
        }
        for split, leak in d(r.get("leakage")).items()
    ]  # fmt: skip
    return {
        "exact": sig(dup.get("exact_rows")),
        "near": sig(dup.get("near_rows")),
        "conflicting": sig(dup.get("conflicting_label_groups")),
        "examples": table(["group", "kind", "row", "label", "text"], rows, text_cols=(4,)),
        "leaks": leaks,
    }


def _markup(r: dict) -> dict | None:
    rows = [
        [str(kind), sig(d(e).get("row")), str(d(e).get("text"))]
        for kind, exs in d(d(r.get("markup")).get("examples")).items()
        for e in exs or []
    ]
    return table(["kind", "row", "text"], rows, (2,))


def _pii(r: dict) -> dict | None:
    pii = d(r.get("pii"))
    if not pii:
        return None
    counts = {k: v for k, v in pii.items() if k not in PII_META and isinstance(v, int)}
    rows = [
        [str(t), sig(d(e).get("row")), str(d(e).get("masked"))]
        for t, exs in d(pii.get("examples")).items()
        for e in exs or []
    ]
    return {
        "rows": sig(pii.get("rows_with_pii")),
        "figure": _figure(
            plots.bars_png(counts, "personal data matches per type", "matches"), "PII"
        ),
        "table": table(["type", "row", "match (masked)"], rows, (2,)),
    }


def _groups(r: dict) -> dict | None:
    groups = d(r.get("groups"))
    if not groups:
        return None
    bias = d(groups.get("bias"))
    per_group = {g: d(c) for g, c in groups.items() if g != "bias"}
    labels = sorted({lab for c in per_group.values() for lab in c})
    rows = [
        [str(g)] + [sig(c.get(lab, 0)) for lab in labels] for g, c in list(per_group.items())[:50]
    ]
    return {
        "figure": _figure(plots.group_shares_png(groups), "label shares per group"),
        "bias": [(k, pct(v) if k.endswith(("share", "gap")) else sig(v)) for k, v in bias.items()],
        "table": table(["group", *labels], rows),
    }


def context(report: dict, title: str) -> dict:
    """Everything templates/data_report.html.j2 shows, in reading order: the warnings and the
    summary first, then the prepare stage and the detail sections with their figures."""
    r = d(report)
    labels, lang = d(r.get("labels")), d(r.get("languages"))
    lang_png = plots.bars_png(
        d(lang.get("counts")), f"languages (sample of {lang.get('sample')} rows)"
    )
    cols = d(r.get("columns"))
    return {
        "title": title,
        "source": str(r.get("source") or ""),
        "warnings": [str(w) for w in r.get("warnings") or [] if w],
        "summary": _summary(r),
        "prepare": _prepare(r),
        "lengths": _lengths(r),
        "labels": _figure(plots.bars_png(d(labels.get("counts")), "label distribution"), "labels")
        if labels
        else None,
        "duplicates": _duplicates(r),
        "markup": _markup(r),
        "languages": _figure(lang_png, "languages"),
        "pii": _pii(r),
        "groups": _groups(r),
        "columns": table(
            ["column", "dtype", "missing"],
            [[str(c), str(d(v).get("dtype")), sig(d(v).get("missing"))] for c, v in cols.items()],
        ),
    }
