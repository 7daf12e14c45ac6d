"""Prediction and confidence drift: how the served model's predicted-label mix and its
confidence compare with what it predicted on the run's validation split."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats as sps


def psi(ref_share: Sequence[float], cur_share: Sequence[float], eps: float = 1e-4) -> float:
    """Population stability index sum((c - r) ln(c / r)) over categories.

    Shares are clipped to `eps` (and renormalised) so an empty category gives a large but
    finite value. An effect size with no p-value: the usual reading is < 0.1 stable,
    0.1-0.25 moderate, > 0.25 large shift.
    """
    r = np.clip(np.asarray(ref_share, dtype=np.float64), eps, None)
    c = np.clip(np.asarray(cur_share, dtype=np.float64), eps, None)
    r, c = r / r.sum(), c / c.sum()
    return float(np.sum((c - r) * np.log(c / r)))


def label_counts(labels: Sequence[str | None], names: Sequence[str]) -> np.ndarray:
    """Counts of each of `names` among `labels` (labels not in `names` or None are skipped)."""
    index = {n: i for i, n in enumerate(names)}
    counts = np.zeros(len(names), dtype=np.int64)
    for label in labels:
        i = index.get(label) if label is not None else None
        if i is not None:
            counts[i] += 1
    return counts


def chi2_test(ref_counts: Sequence[int], cur_counts: Sequence[int]) -> tuple[float, float]:
    """(chi-square statistic, p-value) of the 2 x C contingency table reference vs current.

    A contingency test rather than a goodness-of-fit test against fixed reference shares:
    the reference shares are themselves estimated from a finite validation split, and
    treating them as exact would make the test flag more than its nominal rate. Categories
    empty in both samples are dropped; fewer than two left means no test (NaN).
    """
    table = np.vstack([np.asarray(ref_counts, float), np.asarray(cur_counts, float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or table[0].sum() == 0 or table[1].sum() == 0:
        return float("nan"), float("nan")
    res = sps.chi2_contingency(table)
    return float(res.statistic), float(res.pvalue)


def confidence_hist(confidences: Sequence[float], bins: int = 10) -> dict:
    """{"bins": bin edges (bins + 1 values on [0, 1]), "counts": rows per bin}."""
    values = np.asarray([c for c in confidences if c is not None], dtype=np.float64)
    counts, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    return {"bins": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def mean_confidence(confidences: Sequence[float | None]) -> float:
    """Mean top-class probability (NaN when none)."""
    values = [float(c) for c in confidences if c is not None]
    return float(np.mean(values)) if values else float("nan")
