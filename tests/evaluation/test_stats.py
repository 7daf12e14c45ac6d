"""Bootstrap intervals, the paired bootstrap test and McNemar against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tunelab.metrics.stats import _p_value, bootstrap_ci, mcnemar, paired_test


def accuracy_fn(correct):
    correct = np.asarray(correct, dtype=float)
    return lambda idx: {"accuracy": float(correct[idx].mean())}


def test_bootstrap_small_case_value_interval_and_determinism():
    fn = accuracy_fn([1, 1, 0, 0])
    ci = bootstrap_ci(fn, 4, samples=500, seed=3)
    acc = ci["accuracy"]
    assert acc["value"] == 0.5
    assert acc["low"] <= 0.5 <= acc["high"]
    assert acc["samples"] == 500
    # resampled means of 4 rows can only be multiples of 1/4
    assert acc["low"] in (0.0, 0.25) and acc["high"] in (0.75, 1.0)
    assert bootstrap_ci(fn, 4, samples=500, seed=3) == ci
    assert bootstrap_ci(fn, 4, samples=500, seed=4)["accuracy"]["std"] != acc["std"]


def test_constant_metric_gives_a_point_interval():
    ci = bootstrap_ci(accuracy_fn([1] * 50), 50, samples=200)["accuracy"]
    assert ci["value"] == ci["low"] == ci["high"] == 1.0
    assert ci["std"] == 0.0


def test_bootstrap_std_matches_binomial_standard_error():
    rng = np.random.default_rng(0)
    n, p = 2000, 0.8
    correct = rng.random(n) < p
    ci = bootstrap_ci(accuracy_fn(correct), n, samples=1000, seed=1)["accuracy"]
    acc = correct.mean()
    se = math.sqrt(acc * (1 - acc) / n)  # 0.0089
    assert ci["std"] == pytest.approx(se, rel=0.1)
    # a 95% percentile interval is about +-1.96 standard errors
    assert ci["high"] - ci["low"] == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert ci["low"] < acc < ci["high"]


def test_nan_resamples_are_skipped_per_metric():
    correct = np.array([1, 0, 1, 1, 0, 1, 0, 1], dtype=float)

    def fn(idx):
        # "needs_row0" is undefined (NaN) whenever row 0 is not drawn
        return {
            "accuracy": float(correct[idx].mean()),
            "needs_row0": float(correct[idx].mean()) if 0 in idx else float("nan"),
            "per_class": {"a": 1.0},  # not a number: left out
        }

    ci = bootstrap_ci(fn, 8, samples=400, seed=0)
    assert set(ci) == {"accuracy", "needs_row0"}
    assert ci["accuracy"]["samples"] == 400
    # P(row 0 drawn at least once in 8 draws) = 1 - (7/8)^8 = 0.656
    assert 0.55 * 400 < ci["needs_row0"]["samples"] < 0.75 * 400
    assert math.isfinite(ci["needs_row0"]["low"])


def test_bad_arguments():
    fn = accuracy_fn([1, 0])
    with pytest.raises(ValueError):
        bootstrap_ci(fn, 0)
    with pytest.raises(ValueError):
        bootstrap_ci(fn, 2, level=1.0)


def test_paired_test_of_a_model_against_itself():
    correct = np.random.default_rng(0).random(200) < 0.7
    fn = accuracy_fn(correct)
    res = paired_test(fn, fn, 200, samples=300, correct_a=correct, correct_b=correct)
    acc = res["accuracy"]
    assert acc["a"] == acc["b"] and acc["diff"] == 0.0
    assert acc["low"] == acc["high"] == 0.0
    assert acc["p_value"] == 1.0
    assert res["mcnemar"] == {"a_only": 0, "b_only": 0, "p_value": 1.0}


def test_paired_test_finds_a_clearly_better_model():
    rng = np.random.default_rng(1)
    n = 300
    a = rng.random(n) < 0.6
    b = a | (rng.random(n) < 0.75)  # b right wherever a is, and on most of a's mistakes
    res = paired_test(accuracy_fn(a), accuracy_fn(b), n, samples=1000, correct_a=a, correct_b=b)
    acc = res["accuracy"]
    assert acc["diff"] == pytest.approx(b.mean() - a.mean())
    assert acc["diff"] > 0.2
    assert 0 < acc["low"] <= acc["diff"] <= acc["high"]
    assert acc["p_value"] < 0.01
    assert res["mcnemar"]["a_only"] == 0 and res["mcnemar"]["p_value"] < 1e-10


def test_paired_test_same_draws_as_bootstrap_and_only_shared_metrics():
    a = np.array([1, 0, 1, 1, 0, 1, 0, 0, 1, 1], dtype=float)
    b = np.array([1, 1, 1, 1, 0, 1, 0, 1, 1, 1], dtype=float)

    def fa(idx):
        return {"accuracy": float(a[idx].mean()), "only_a": 1.0}

    res = paired_test(fa, accuracy_fn(b), 10, samples=200, seed=7)
    assert set(res) == {"accuracy"}
    # the diff interval is the bootstrap interval of the per-row difference's mean
    diff_ci = bootstrap_ci(accuracy_fn(b - a), 10, samples=200, seed=7)["accuracy"]
    assert res["accuracy"]["low"] == pytest.approx(diff_ci["low"])
    assert res["accuracy"]["high"] == pytest.approx(diff_ci["high"])


def test_p_value_shifted_distribution_by_hand():
    # observed 0.1; shifted = diffs - 0.1 = [-0.1, 0, 0, 0.05, 0.12]: one value >= 0.1
    diffs = np.array([0.0, 0.1, 0.1, 0.15, 0.22])
    assert _p_value(diffs, 0.1) == pytest.approx(2 * (1 + 1) / (1 + 5))
    # mirrored for a negative difference
    assert _p_value(-diffs, -0.1) == pytest.approx(2 * 2 / 6)
    assert _p_value(np.full(999, 0.3), 0.3) == pytest.approx(2 / 1000)  # never exactly 0
    assert _p_value(diffs, 0.0) == 1.0


def _table(a_only: int, b_only: int, both: int = 20, neither: int = 5):
    a = [True] * a_only + [False] * b_only + [True] * both + [False] * neither
    b = [False] * a_only + [True] * b_only + [True] * both + [False] * neither
    return np.array(a), np.array(b)


def test_mcnemar_exact_by_hand():
    res = mcnemar(*_table(a_only=2, b_only=10))
    expected = 2 * sum(math.comb(12, k) for k in range(3)) / 2**12  # 158/4096
    assert res["a_only"] == 2 and res["b_only"] == 10
    assert res["p_value"] == pytest.approx(expected) == pytest.approx(0.03857, abs=1e-5)
    # symmetric in the two models
    swapped = mcnemar(*reversed(_table(a_only=2, b_only=10)))
    assert swapped["a_only"] == 10 and swapped["p_value"] == pytest.approx(expected)
    assert mcnemar(*_table(a_only=3, b_only=3))["p_value"] == 1.0


def test_mcnemar_rejects_mismatched_rows():
    with pytest.raises(ValueError):
        mcnemar([True, False], [True])
