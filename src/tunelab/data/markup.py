"""`data.clean_markup`: strip HTML tags and entities from classification text before training.

Review and web data carry `<br />` and `&#039;`; `tunelab data inspect` flags them, and a
model trained on them learns markup. Without a `data.prepare:` section, `tunelab train`
therefore cleans them by default (`auto`: only when some row of a text column has markup,
judged by the same `has_markup` check the inspect report uses). The cleaning is a prepare
stage with `clean.strip_html` as its only step, so it reuses that stage: cleaned copies of
train/validation/test in `<output>-prepared/` (cached by fingerprint, counted in its report),
never a rewrite of the user's files, and a text without markup comes out as it went in.
"""

from __future__ import annotations

from tunelab.config.schema import (
    CleanConfig,
    DataConfig,
    DedupConfig,
    PIIConfig,
    PrepareConfig,
    SplitConfig,
)

SPLITS = ("train", "validation", "test")
# clean.strip_html and nothing else: no other cleaning, no dedup, PII, split or leakage step
MARKUP_ONLY = PrepareConfig(
    clean=CleanConfig(
        strip_html=True,
        fix_mojibake=False,
        unicode_nfc=False,
        remove_control=False,
        normalize_whitespace=False,
        drop_empty=False,
    ),
    dedup=DedupConfig(exact=False, near=False),
    pii=PIIConfig(action="off"),
    split=SplitConfig(remove_leakage=False),
)


def markup_rows(data: DataConfig) -> tuple[int, int, str | None]:
    """(rows with markup in a text column, rows, where the first is: 'train.csv row 3'),
    over all the splits given."""
    from tunelab.data.clean import has_markup
    from tunelab.data.readers import read_table, require_columns

    found, total, first = 0, 0, None
    columns = [c for c in (data.text, data.text_pair) if c]
    for split in SPLITS:
        path = getattr(data, split)
        if not path:
            continue
        df = read_table(path)
        require_columns(df, path, columns)
        total += len(df)
        hit = df[columns].astype(str).apply(lambda col: col.map(has_markup)).any(axis=1)
        found += int(hit.sum())
        if first is None and hit.any():
            first = f"{path} row {hit.idxmax()}"
    return found, total, first


def markup_stage(data: DataConfig, applies: bool) -> tuple[PrepareConfig | None, dict]:
    """The prepare stage that cleans markup (None: no cleaning), and the default chosen, in
    the `{"data.clean_markup": {"value", "why"}}` form of the run's other chosen defaults
    (empty when the config set the value). `applies`: the task reads `data.clean_markup`."""
    if data.prepare is not None or not applies or data.clean_markup is False:
        return None, {}
    if data.clean_markup is True:
        return MARKUP_ONLY, {}
    found, total, first = markup_rows(data)
    if found:
        why = (
            f"{found:,} of {total:,} rows of {'/'.join(s for s in SPLITS if getattr(data, s))} "
            "have HTML markup or entities such as <br /> or "
            f"&#039;, first {first}; training reads cleaned copies, "
            "data.clean_markup: false keeps the text as it is"
        )
    else:
        why = "no HTML markup or entities in the text columns"
    return (MARKUP_ONLY if found else None), {
        "data.clean_markup": {"value": bool(found), "why": why}
    }
