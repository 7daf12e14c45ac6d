"""Input health: how long the inputs are, how many tokens the tokenizer could not place, and
which languages they are in, against the same numbers on the run's training data."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import stats as sps


def length_stats(n_tokens: Sequence[int | None]) -> tuple[float, float]:
    """(mean, 95th percentile) token count; NaN when no row has a count."""
    values = np.asarray([n for n in n_tokens if n is not None], dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan")
    return float(values.mean()), float(np.percentile(values, 95))


def length_ks(cur: Sequence[int | None], ref: Sequence[int]) -> float:
    """Two-sample Kolmogorov-Smirnov p-value of current token counts vs the reference's.

    Token counts are integers, so there are ties; for discrete data the KS p-value is
    conservative (flags less than its nominal rate), which is the safe side for alerts.
    """
    a = np.asarray([n for n in cur if n is not None], dtype=np.float64)
    b = np.asarray([n for n in ref if n is not None], dtype=np.float64)
    if a.size < 2 or b.size < 2:
        return float("nan")
    return float(sps.ks_2samp(a, b).pvalue)


def unk_rate(n_unk: Sequence[int | None], n_tokens: Sequence[int | None]) -> float:
    """sum(unknown tokens) / sum(tokens) over rows that have both counts; NaN when none."""
    unk = total = 0
    for u, t in zip(n_unk, n_tokens):
        if u is not None and t is not None:
            unk += int(u)
            total += int(t)
    return unk / total if total else float("nan")


def _classify(text: str) -> str:
    import py3langid as langid

    return str(langid.classify(text)[0])


def languages(texts: Iterable[str | None]) -> dict[str, float]:
    """Share of each language (py3langid's ISO 639-1 code) among the texts, largest first.

    Texts that are None (logging with --log-text none) or blank are skipped; no text left
    gives {}.
    """
    codes = [_classify(t) for t in texts if t is not None and t.strip()]
    if not codes:
        return {}
    counts = Counter(codes)
    n = len(codes)
    return {code: c / n for code, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}
