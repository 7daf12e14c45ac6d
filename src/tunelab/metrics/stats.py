"""How sure a metric is: bootstrap confidence intervals, paired bootstrap test, McNemar.

A metric on a few hundred rows moves by whole points between two samples of the same
population, so `tunelab eval` reports an interval with each number and a p-value with each
difference between two models. Everything here works on a `metric_fn(indices) -> {name:
value}` (see rows.RowOutputs): the metric recomputed on the rows at `indices`, which may
repeat. No model is called; the cost is `samples` calls of `metric_fn`.

Method (written out in docs/evaluation.md):
- percentile bootstrap: draw `samples` index vectors of size n with replacement, recompute the
  metric on each; the interval is the (1-level)/2 and (1+level)/2 quantiles of those values.
- paired bootstrap: the same index vector for both models in a draw, so the interval and the
  p-value are about the difference b - a on the same rows (much tighter than two separate
  intervals when the models agree on most rows).
- McNemar: exact binomial test on the rows exactly one of the two models gets right.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

MetricFn = Callable[[np.ndarray], dict[str, float]]  # per-row outputs at these indices -> metrics


def _number(value: Any) -> float | None:
    """A finite float, or None for NaN/inf/non-numbers (a metric undefined on a resample)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _numeric(result: dict[str, Any]) -> dict[str, float | None]:
    """The numeric entries of a metric_fn result (NaN -> None); nested or text ones dropped."""
    return {
        k: _number(v)
        for k, v in result.items()
        if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
    }


def _check(n: int, samples: int, level: float) -> None:
    if n <= 0:
        raise ValueError(f"need at least one row to bootstrap, got n={n}")
    if samples <= 0:
        raise ValueError(f"samples must be > 0, got {samples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")


def _draws(n: int, samples: int, seed: int):
    """The bootstrap index vectors, (n,) int64 each; the same seed gives the same vectors."""
    rng = np.random.default_rng(seed)
    for _ in range(samples):
        yield rng.integers(0, n, size=n)


def _interval(values: list[float], level: float) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(np.asarray(values), [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_ci(
    metric_fn: MetricFn, n: int, *, samples: int = 1000, level: float = 0.95, seed: int = 0
) -> dict[str, dict]:
    """Percentile-bootstrap confidence interval of every metric `metric_fn` returns.

    Returns {metric: {"value": metric on all n rows, "low", "high": the `level` interval,
    "std": standard deviation of the resampled values (the bootstrap standard error),
    "samples": resamples where the metric was defined}}. A resample where a metric comes back
    NaN (a class absent from the resample, say) is left out for that metric only; a metric
    never defined gets None for low/high/std. Deterministic for a given seed.
    """
    _check(n, samples, level)
    full = _numeric(metric_fn(np.arange(n)))
    values: dict[str, list[float]] = {k: [] for k in full}
    for idx in _draws(n, samples, seed):
        for key, value in metric_fn(idx).items():
            value = _number(value)
            if key in values and value is not None:
                values[key].append(value)
    out: dict[str, dict] = {}
    for key, value in full.items():
        low, high = _interval(values[key], level)
        std = float(np.std(values[key], ddof=1)) if len(values[key]) > 1 else None
        out[key] = {
            "value": value,
            "low": low,
            "high": high,
            "std": std,
            "samples": len(values[key]),
        }
    return out


def _p_value(diffs: np.ndarray, observed: float) -> float:
    """Two-sided bootstrap p-value of "no difference" from the resampled differences.

    Shifted-distribution definition: `diffs - observed` approximates how the difference would
    scatter around 0 if the models were equally good. The one-sided p is the share of those
    shifted values at least as far beyond 0 as the observed difference, on its side
    (i.e. diff* - d >= d for d > 0); it is doubled for a two-sided test and capped at 1. The
    count gets +1 on top and bottom ((1 + k) / (1 + B)), so no finite number of resamples
    ever reports p = 0. An observed difference of exactly 0 gives p = 1.
    """
    if observed == 0.0 or diffs.size == 0:
        return 1.0
    shifted = diffs - observed
    if observed > 0:
        beyond = int(np.sum(shifted >= observed))
    else:
        beyond = int(np.sum(shifted <= observed))
    return min(1.0, 2.0 * (1 + beyond) / (1 + diffs.size))


def paired_test(
    metric_a: MetricFn,
    metric_b: MetricFn,
    n: int,
    *,
    samples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    correct_a: Any = None,
    correct_b: Any = None,
) -> dict:
    """Paired bootstrap comparison of model B against model A on the same n rows.

    Each draw uses one index vector for both models. Per metric present in both:
    {"a", "b": values on all rows, "diff": b - a, "low", "high": `level` interval of the
    resampled b - a, "p_value": two-sided p of "no difference" (see `_p_value`),
    "samples": resamples where both were defined}. With `correct_a`/`correct_b` (n bools,
    row right or wrong) the result also holds "mcnemar": mcnemar(correct_a, correct_b).
    """
    _check(n, samples, level)
    idx_all = np.arange(n)
    full_a, full_b = _numeric(metric_a(idx_all)), _numeric(metric_b(idx_all))
    keys = [k for k in full_a if k in full_b]
    diffs: dict[str, list[float]] = {k: [] for k in keys}
    for idx in _draws(n, samples, seed):
        res_a, res_b = metric_a(idx), metric_b(idx)
        for key in keys:
            a, b = _number(res_a.get(key)), _number(res_b.get(key))
            if a is not None and b is not None:
                diffs[key].append(b - a)
    out: dict[str, Any] = {}
    for key in keys:
        a, b = full_a[key], full_b[key]
        observed = None if a is None or b is None else b - a
        low, high = _interval(diffs[key], level)
        p = None if observed is None else _p_value(np.asarray(diffs[key]), observed)
        out[key] = {
            "a": a,
            "b": b,
            "diff": observed,
            "low": low,
            "high": high,
            "p_value": p,
            "samples": len(diffs[key]),
        }
    if correct_a is not None and correct_b is not None:
        out["mcnemar"] = mcnemar(correct_a, correct_b)
    return out


def mcnemar(correct_a: Any, correct_b: Any) -> dict:
    """Exact McNemar test of two models scored on the same rows.

    Only the discordant rows carry information: a_only (A right, B wrong) and b_only (B right,
    A wrong). Under "equally good" each discordant row is a fair coin, so the two-sided p-value
    is the exact binomial one: 2 * P(X <= min(a_only, b_only)), X ~ Binomial(a_only + b_only,
    1/2), capped at 1 (scipy.stats.binomtest). No discordant rows gives p = 1.
    """
    from scipy.stats import binomtest

    a = np.asarray(correct_a, dtype=bool).ravel()
    b = np.asarray(correct_b, dtype=bool).ravel()
    if a.shape != b.shape:
        raise ValueError(f"correct_a has {a.size} rows, correct_b {b.size}: they must match")
    a_only = int(np.sum(a & ~b))
    b_only = int(np.sum(~a & b))
    discordant = a_only + b_only
    p = 1.0 if discordant == 0 else float(binomtest(b_only, discordant, 0.5).pvalue)
    return {"a_only": a_only, "b_only": b_only, "p_value": min(1.0, p)}


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval (95% by default) of a proportion k / n; (nan, nan) for n = 0."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, mid - half)), float(min(1.0, mid + half))
