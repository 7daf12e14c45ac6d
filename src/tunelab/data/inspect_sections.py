"""The sections of a data inspection report, one function each; `inspect.py` assembles them.

Every function returns plain JSON types (str keys, int/float/str/None, lists), so that
`report.json` loads back equal to the report. Rows are always the user's row numbers
(`row_numbers`), never positions, so a person can find them in the file. Examples carry at
most `_EXAMPLE_CHARS` characters of text to keep the report small; personal data in
examples is masked.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd

from tunelab.data.class_weights import rare_class_warnings

_EXAMPLE_CHARS = 300
MISSING_GROUP = "(missing)"


def rows_have(n: int) -> str:
    """'1 row has' / '3 rows have': warnings are sentences."""
    return "1 row has" if n == 1 else f"{n:,} rows have"


def row_numbers(df: pd.DataFrame) -> list:
    """1-based row numbers: the index of a `read_table` frame; a 0-based RangeIndex gets +1."""
    idx = df.index
    if isinstance(idx, pd.RangeIndex) and idx.start == 0 and idx.step == 1:
        return list(range(1, len(df) + 1))
    return [int(r) if isinstance(r, (int, np.integer)) else str(r) for r in idx]


def is_missing(v: object) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def column_texts(df: pd.DataFrame, column: str) -> list[str]:
    """The column as strings; a missing cell is "" (counted as empty, never an error here)."""
    return [v if isinstance(v, str) else "" if is_missing(v) else str(v) for v in df[column]]


def clip(text: str) -> str:
    return text if len(text) <= _EXAMPLE_CHARS else text[: _EXAMPLE_CHARS - 1] + "…"


def length_stats(lengths: np.ndarray, bins: int = 30, show: float | None = None) -> dict:
    """mean/p50/p90/p99/max and a histogram over [0, top].

    `top` is the max, or p99 when the max is a far outlier (> 2x p99): one 10,000-char row
    would otherwise squeeze every other row into the first bar. It reaches at least `show`
    (the max_length) where data goes that far, so rows above `top` (`overflow`) are then
    exactly the truncated ones.
    """
    x = np.asarray(lengths, dtype=np.float64)
    if x.size == 0:
        hist = {"edges": [], "counts": [], "overflow": 0}
        return {"mean": None, "p50": None, "p90": None, "p99": None, "max": None, "histogram": hist}
    p50, p90, p99 = (float(v) for v in np.percentile(x, [50, 90, 99]))
    hi = float(x.max())
    top = p99 if p99 > 0 and hi > 2 * p99 else hi
    if show is not None:
        top = max(top, min(hi, float(show)))
    n_bins = max(1, min(bins, int(top) + 1))
    counts, edges = np.histogram(x[x <= top], bins=n_bins, range=(0.0, max(top, 1.0)))
    return {
        "mean": float(x.mean()),
        "p50": p50,
        "p90": p90,
        "p99": p99,
        "max": int(hi) if hi.is_integer() else hi,
        "histogram": {
            "edges": [round(float(e), 4) for e in edges],
            "counts": [int(c) for c in counts],
            "overflow": int((x > top).sum()),
        },
    }


def _label_scalar(v: object) -> object:
    """A label as int/str/bool (floats like 1.0 back to int); None for a missing one."""
    if is_missing(v):
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return int(v)
    if isinstance(v, str):
        return v.strip() or None
    return v


def parse_labels(values: Sequence) -> list[list | None]:
    """Per row: the list of its labels (one for single-label), or None when it has none.

    Multi-label cells are lists/arrays, or (from CSV) JSON-looking strings "[\"a\", \"b\"]".
    """
    out: list[list | None] = []
    for v in values:
        if isinstance(v, str) and v.lstrip().startswith("["):
            try:
                v = json.loads(v)
            except ValueError:
                pass
        if isinstance(v, (list, tuple, np.ndarray)):
            items = [x for x in (_label_scalar(x) for x in v) if x is not None]
            out.append(items)
        else:
            x = _label_scalar(v)
            out.append(None if x is None else [x])
    return out


def label_section(labels: list[list | None], rows: list) -> tuple[dict, list[str]]:
    """Counts per label (as str), imbalance ratio, missing, and type mixing; plus warnings."""
    counts: Counter = Counter()
    kinds: dict[str, list] = {}
    for r, items in zip(rows, labels):
        for x in items or []:
            counts[str(x)] += 1
            kinds.setdefault(type(x).__name__, []).append((r, x))
    missing = sum(1 for items in labels if not items)
    ordered = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    ratio = max(counts.values()) / min(counts.values()) if counts else None
    sec = {
        "counts": ordered,
        "imbalance_ratio": ratio,
        "missing": missing,
        "multi_label": any(items is not None and len(items) != 1 for items in labels),
        "types": {k: len(v) for k, v in kinds.items()},
    }
    warn = []
    if len(kinds) > 1:
        parts = [f"{len(v)} {k} (e.g. row {v[0][0]}: {v[0][1]!r})" for k, v in kinds.items()]
        warn.append(
            f"label column mixes types: {', '.join(parts)}; the text '1' and the number 1 "
            "are different labels to a model, use one type"
        )
    if missing:
        warn.append(f"{rows_have(missing)} no label")
    if len(counts) == 1:
        warn.append(f"only one label occurs ('{next(iter(counts))}'): nothing to learn")
    elif ratio is not None and ratio >= 3:
        warn.append(f"labels are imbalanced {ratio:.1f}:1 ({_extremes(ordered)})")
    if len(counts) > 1:
        warn += rare_class_warnings(counts, what="row")
    return sec, warn


def _extremes(counts: dict) -> str:
    (big, nb), (small, ns) = next(iter(counts.items())), list(counts.items())[-1]
    return f"'{big}' {nb:,} rows, '{small}' {ns:,}"


def label_key(items: list | None) -> str | None:
    return None if not items else "|".join(sorted(str(x) for x in items))


def label_display(items: list | None) -> str | list | None:
    if not items:
        return None
    return str(items[0]) if len(items) == 1 else [str(x) for x in items]


def group_section(
    groups: list, labels: list[list | None] | None, min_rows: int = 20
) -> tuple[dict, list[str]]:
    """Label counts per group value and the largest gap in a label's share between groups.

    Only groups with >= `min_rows` labelled rows enter the gap: a 3-row group at 100% says
    nothing. Without a label column each group maps to {"rows": n} and there is no bias.
    """
    keys = [MISSING_GROUP if is_missing(g) else str(g) for g in groups]
    if labels is None:
        sec: dict = {g: {"rows": n} for g, n in Counter(keys).most_common()}
        sec["bias"] = None
        return sec, []
    table: dict[str, Counter] = {}
    rows_per: Counter = Counter()
    for g, items in zip(keys, labels):
        if not items:
            continue
        rows_per[g] += 1
        table.setdefault(g, Counter()).update(str(x) for x in items)
    sec = {g: dict(sorted(table[g].items())) for g, _ in rows_per.most_common()}
    if "bias" in sec:  # a group literally named "bias" must not collide with the summary
        sec["bias (group)"] = sec.pop("bias")
    big = [g for g, n in rows_per.items() if n >= min_rows]
    bias: dict = {"label_rate_gap": None, "worst_label": None, "groups_considered": len(big)}
    warn = []
    if len(big) >= 2:
        all_labels = sorted({lab for g in big for lab in table[g]})
        best = None
        for lab in all_labels:
            shares = {g: table[g].get(lab, 0) / rows_per[g] for g in big}
            lo, hi = min(shares, key=shares.get), max(shares, key=shares.get)
            gap = shares[hi] - shares[lo]
            if best is None or gap > best[0]:
                best = (gap, lab, lo, shares[lo], hi, shares[hi])
        gap, lab, lo, s_lo, hi, s_hi = best
        bias.update(
            label_rate_gap=gap,
            worst_label=lab,
            low_group=lo,
            low_share=s_lo,
            high_group=hi,
            high_share=s_hi,
        )
        if gap >= 0.2:
            warn.append(
                f"label balance differs across groups: {lab} is {s_lo:.0%} in group {lo} "
                f"and {s_hi:.0%} in group {hi}"
            )
    small = len(rows_per) - len(big)
    if small:
        have = "1 group has" if small == 1 else f"{small} groups have"
        warn.append(f"{have} fewer than {min_rows} labelled rows (left out of the bias check)")
    sec["bias"] = bias
    return sec, warn


def mask(text: str) -> str:
    """Hide personal data but keep its shape: first and last character, separators kept."""
    if len(text) <= 2:
        return "*" * len(text)
    middle = "".join("*" if ch.isalnum() else ch for ch in text[1:-1])
    return text[0] + middle + text[-1]


def pii_section(texts: list[str], positions: np.ndarray, rows: list) -> tuple[dict, list[str]]:
    """Matches per PII type (all types listed, 0 included), rows with any, masked examples."""
    from tunelab.data.pii import PII_TYPES, find_pii

    counts: Counter = Counter({t: 0 for t in PII_TYPES})
    examples: dict[str, list] = {}
    with_pii = 0
    for i in positions:
        found = find_pii(texts[i])
        if not found:
            continue
        with_pii += 1
        for m in found:
            counts[m.type] += 1
            ex = examples.setdefault(m.type, [])
            if len(ex) < 3:
                ex.append({"row": rows[i], "masked": mask(m.text)})
    sec: dict = {str(t): int(n) for t, n in counts.items()}
    sec["rows_with_pii"] = with_pii
    sec["examples"] = examples
    found_types = [(t, n) for t, n in counts.most_common() if n]
    warn = []
    if found_types:
        what = ", ".join(f"{n} {t}" for t, n in found_types)
        warn.append(
            f"personal data found: {what} (in {with_pii:,} row{'s' if with_pii != 1 else ''})"
        )
    return sec, warn


def markup_section(texts: list[str], positions: np.ndarray, rows: list) -> tuple[dict, list[str]]:
    """Rows with HTML/markup, control characters or mojibake, with up to 3 examples each."""
    from tunelab.data.clean import text_issues

    kinds = ("html", "control", "mojibake")
    wanted = set(kinds)
    counts = {k: 0 for k in kinds}
    examples: dict[str, list] = {k: [] for k in kinds}
    for i in positions:
        for k in text_issues(texts[i]) & wanted:
            counts[k] += 1
            if len(examples[k]) < 3:
                examples[k].append({"row": rows[i], "text": clip(texts[i])})
    words = {
        "html": "with HTML or markup",
        "control": "with control characters",
        "mojibake": "that look mis-decoded (mojibake such as 'cafÃ©')",
    }
    warn = [
        f"{counts[k]:,} row{'s' if counts[k] != 1 else ''} {words[k]}" for k in kinds if counts[k]
    ]
    return {**counts, "examples": examples}, warn
