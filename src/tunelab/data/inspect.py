"""Inspect a data set before fine-tuning: what a person should fix, as a JSON-ready report.

Most failed fine-tunes are data problems (duplicates, leaked test rows, one class in ten,
texts the tokenizer cuts off, mis-decoded bytes, personal data). `inspect_frame` measures
each and writes a plain sentence in `report["warnings"]` for every one worth acting on.
It never refuses data that training would accept: odd labels are warnings here, while
missing columns are a `DataError` naming the file and column.

Speed: blank checks and lengths are vectorised (pandas/numpy), the per-row checks of
clean/pii/dedup bail out early on ordinary text, language detection runs on a seeded
sample, and near-duplicates use MinHash/LSH, so ~80k rows take seconds (token counting
with a tokenizer comes on top).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from tunelab.data import inspect_sections as sec
from tunelab.data.readers import require_columns
from tunelab.errors import DataError

_EXAMPLE_GROUPS = 5


def inspect_frame(
    df: pd.DataFrame,
    text: str,
    label: str | None = None,
    *,
    text_pair: str | None = None,
    group: str | None = None,
    tokenizer=None,
    max_length: int | None = None,
    others: dict[str, pd.DataFrame] | None = None,
    near_threshold: float = 0.8,
    language_sample: int = 2000,
    seed: int = 0,
) -> dict:
    """Report on `df`: rows, columns, empty texts, lengths (chars, and tokens with a
    `tokenizer`), labels, duplicates, leakage into each frame of `others`, markup, languages,
    personal data and (with `group`) label balance per group. Sentence pairs (`text_pair`)
    are measured as text and pair together. See the module docstring for why.
    """
    file = str(df.attrs.get("source", "<data>"))
    require_columns(df, file, [c for c in (text, text_pair, label) if c is not None])
    if group is not None and group not in df.columns:
        have = ", ".join(str(c) for c in df.columns)
        raise DataError(
            file, f"group column '{group}' not found; columns are: {have}", column=group
        )
    rows = sec.row_numbers(df)
    first = sec.column_texts(df, text)
    second = sec.column_texts(df, text_pair) if text_pair else None
    texts = first if second is None else [a + "\n" + b for a, b in zip(first, second)]
    empty, blank = _blank(first)
    if second is not None:
        e2, b2 = _blank(second)
        empty, blank = empty | e2, blank | b2
    positions = np.flatnonzero(~blank)  # rows with text: the only ones worth comparing
    lengths = _lengths(first) + (_lengths(second) if second is not None else 0)

    report: dict = {
        "source": None if df.attrs.get("source") is None else str(df.attrs["source"]),
        "settings": {
            "text": text,
            "text_pair": text_pair,
            "label": label,
            "group": group,
            "near_threshold": near_threshold,
            "language_sample": language_sample,
            "seed": seed,
        },
        "rows": len(df),
        "columns": {
            str(c): {"dtype": str(df[c].dtype), "missing": int(df[c].isna().sum())}
            for c in df.columns
        },
        "text": {"empty": int(empty.sum()), "whitespace_only": int((blank & ~empty).sum())},
        "length_chars": sec.length_stats(lengths),
    }
    warnings: list[str] = []
    n_blank = int(blank.sum())
    if n_blank:
        warnings.append(
            f"{sec.rows_have(n_blank)} empty or whitespace-only text "
            f"({report['text']['empty']} empty, {report['text']['whitespace_only']} whitespace)"
        )
    if tokenizer is not None:
        report["length_tokens"], w = _token_section(tokenizer, first, second, max_length)
        warnings += w
    labels = sec.parse_labels(df[label].tolist()) if label is not None else None
    if labels is not None:
        report["labels"], w = sec.label_section(labels, rows)
        warnings += w
    report["duplicates"], w, keys = _duplicates(
        texts, positions, rows, labels, near_threshold, want_keys=bool(others)
    )
    warnings += w
    if others:
        report["leakage"], w = _leakage(keys, others, text, text_pair, _name(file))
        warnings += w
    for name, build in (
        ("markup", lambda: sec.markup_section(texts, positions, rows)),
        ("languages", lambda: _language_section(texts, positions, language_sample, seed)),
        ("pii", lambda: sec.pii_section(texts, positions, rows)),
    ):
        report[name], w = build()
        warnings += w
    if group is not None:
        report["groups"], w = sec.group_section(df[group].tolist(), labels)
        warnings += w
    report["warnings"] = warnings
    return report


def _blank(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(empty, blank) boolean arrays: "" (or missing) and empty-or-whitespace-only."""
    s = pd.Series(texts, dtype=object)
    return (s.str.len() == 0).to_numpy(dtype=bool), (s.str.strip() == "").to_numpy(dtype=bool)


def _lengths(texts: list[str]) -> np.ndarray:
    return np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))


def _name(file: str) -> str:
    """What to call the inspected data in a sentence: the file stem ('train')."""
    return Path(file).stem if file and file != "<data>" else "this data"


def _token_section(
    tokenizer, first: list[str], second: list[str] | None, max_length: int | None
) -> tuple[dict, list[str]]:
    """Token-length stats with the model's tokenizer (special tokens included, as the model
    sees them) and the share of rows longer than `max_length` that would be truncated."""
    if max_length is None:
        max_length = min(int(getattr(tokenizer, "model_max_length", 512) or 512), 512)
    lengths = np.empty(len(first), dtype=np.int64)
    quiet = logging.getLogger("transformers.tokenization_utils_base")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "sequence longer than max" is exactly what we measure
    try:
        step = 2048
        for s in range(0, len(first), step):
            pair = second[s : s + step] if second is not None else None
            enc = tokenizer(first[s : s + step], pair, truncation=False, verbose=False)
            lengths[s : s + step] = [len(ids) for ids in enc["input_ids"]]
    finally:
        quiet.setLevel(level)
    stats = sec.length_stats(lengths, show=max_length)
    share = float((lengths > max_length).mean()) if len(lengths) else 0.0
    stats.update(max_length=int(max_length), truncated_share=share)
    warn = []
    if share > 0:
        warn.append(
            f"{share:.1%} of rows exceed max_length {max_length} tokens and would be truncated"
        )
    return stats, warn


def _duplicates(
    texts: list[str],
    positions: np.ndarray,
    rows: list,
    labels: list[list | None] | None,
    threshold: float,
    want_keys: bool,
) -> tuple[dict, list[str], set[str]]:
    """Exact (normalized text) and near (MinHash) duplicate groups among non-empty rows, and
    exact groups whose labels disagree. Also returns the dedup keys (for leakage) if wanted."""
    from tunelab.data.dedup import dedup_key, exact_groups, near_groups

    sub = [texts[i] for i in positions]
    keys = {dedup_key(t) for t in sub} if want_keys else set()
    exact = [[int(positions[j]) for j in g] for g in exact_groups(sub) if len(g) > 1]
    near = [[int(positions[j]) for j in g] for g in near_groups(sub, threshold) if len(g) > 1]

    def labkey(i: int) -> str | None:
        return sec.label_key(labels[i]) if labels is not None else None

    conflicts = [g for g in exact if len({labkey(i) for i in g if labkey(i) is not None}) > 1]
    exact_of = {i: k for k, g in enumerate(exact) for i in g}
    near_only = [g for g in near if len({exact_of.get(i, -1 - i) for i in g}) > 1]
    conflict_ids = {id(g) for g in conflicts}
    kinds = {
        "conflicting labels": conflicts,
        "exact": [g for g in exact if id(g) not in conflict_ids],
        "near": near_only,
    }
    picked = _round_robin(kinds, _EXAMPLE_GROUPS)
    examples = [
        {
            "kind": kind,
            "rows": [rows[i] for i in g[:10]],
            "texts": [sec.clip(texts[i]) for i in g[:10]],
            "labels": [sec.label_display(labels[i]) if labels else None for i in g[:10]],
        }
        for kind, g in picked[:_EXAMPLE_GROUPS]
    ]
    report = {
        "exact_groups": len(exact),
        "exact_rows": sum(len(g) - 1 for g in exact),
        "near_groups": len(near),
        "near_rows": sum(len(g) - 1 for g in near),
        "near_threshold": threshold,
        "conflicting_label_groups": len(conflicts),
        "examples": examples,
    }
    warn = []
    n = len(texts)
    if report["exact_rows"]:
        warn.append(
            f"{report['exact_rows'] / n:.1%} of rows are exact duplicates "
            f"({report['exact_rows']:,} beyond the first of each of {len(exact):,} groups)"
        )
    extra = report["near_rows"] - report["exact_rows"]
    if extra > 0:
        warn.append(
            f"{extra:,} more rows are near-duplicates (MinHash similarity >= {threshold}, "
            f"{len(near_only):,} groups)"
        )
    if conflicts:
        warn.append(f"{len(conflicts):,} groups of duplicate texts carry conflicting labels")
    return report, warn, keys


def _round_robin(kinds: dict[str, list], k: int) -> list[tuple[str, list]]:
    """Up to `k` (kind, group) pairs taking one of each kind in turn, so that every kind of
    duplicate gets an example, conflicts first."""
    out: list[tuple[str, list]] = []
    depth = 0
    while len(out) < k and any(depth < len(v) for v in kinds.values()):
        out += [(name, v[depth]) for name, v in kinds.items() if depth < len(v)]
        depth += 1
    return out[:k]


def _leakage(
    keys: set[str],
    others: dict[str, pd.DataFrame],
    text: str,
    text_pair: str | None,
    name: str,
) -> tuple[dict, list[str]]:
    """Per other split: its rows whose normalized text also occurs in the inspected data."""
    from tunelab.data.dedup import dedup_key

    out: dict = {}
    warn = []
    for split, other in others.items():
        ofile = str(other.attrs.get("source", split))
        require_columns(other, ofile, [c for c in (text, text_pair) if c is not None])
        first = sec.column_texts(other, text)
        if text_pair:
            second = sec.column_texts(other, text_pair)
            texts = [a + "\n" + b for a, b in zip(first, second)]
        else:
            texts = first
        orows = sec.row_numbers(other)
        hits = [i for i, t in enumerate(texts) if t.strip() and dedup_key(t) in keys]
        out[str(split)] = {
            "rows": len(hits),
            "of": len(other),
            "examples": [{"row": orows[i], "text": sec.clip(texts[i])} for i in hits[:5]],
        }
        if hits:
            what = "1 text" if len(hits) == 1 else f"{len(hits):,} texts"
            verb = "appears" if len(hits) == 1 else "appear"
            warn.append(f"{what} of {split} also {verb} in {name} (leakage)")
    return out, warn


def _language_section(
    texts: list[str], positions: np.ndarray, sample: int, seed: int
) -> tuple[dict, list[str]]:
    """Languages of a seeded random sample of non-empty rows ("unknown" when undetectable)."""
    from tunelab.data.clean import detect_language

    rng = np.random.default_rng(seed)
    n = min(sample, len(positions))
    picked = np.sort(rng.choice(positions, size=n, replace=False)) if n else positions[:0]
    counts = Counter(detect_language(texts[i]) or "unknown" for i in picked)
    ordered = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    known = {k: v for k, v in ordered.items() if k != "unknown"}
    warn = []
    if known:
        rest = sum(known.values()) - max(known.values())
        if rest / sum(known.values()) > 0.1:
            mix = ", ".join(f"{k} {v / n:.0%}" for k, v in list(known.items())[:4])
            warn.append(f"languages are mixed (sample of {n} rows): {mix}")
    return {"sample": int(n), "counts": ordered}, warn
