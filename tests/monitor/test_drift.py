"""Embedding drift tests: the pooled-permutation MMD and the domain classifier hold their
nominal false-alarm rate on no-shift data and flag a real shift. Seeded: deterministic."""

import numpy as np

from tunelab.monitor.drift import domain_classifier, mmd_test

REPS = 40
N = 150


def _same(rng):
    return rng.normal(size=(N, 64)), rng.normal(size=(N, 64))


def _shifted(rng):
    a, b = rng.normal(size=(N, 64)), rng.normal(size=(N, 64))
    b[:, :4] += 0.6
    return a, b


def test_mmd_no_shift_false_alarm_rate_near_nominal():
    rng = np.random.default_rng(1)
    ps = np.array([mmd_test(*_same(rng), permutations=200, seed=r)[1] for r in range(REPS)])
    # nominal 5%: 2 of 40 expected; <= 6 (15%) is generous enough never to flake
    assert np.mean(ps < 0.05) <= 0.15
    # and not degenerate: the p-values spread over (0, 1) like a uniform sample
    assert 0.3 < np.median(ps) < 0.7


def test_mmd_flags_shift():
    mmd2, p = mmd_test(*_shifted(np.random.default_rng(2)), permutations=200)
    assert p < 0.01 and mmd2 > 0


def test_mmd_unbiased_near_zero_and_subsamples_reference():
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(size=(1500, 8)), rng.normal(size=(100, 8))
    mmd2, p = mmd_test(ref, cur, permutations=100, max_ref=300)
    assert abs(mmd2) < 0.02 and p > 0.01


def test_domain_classifier_no_shift_false_alarm_rate_and_auc_near_half():
    rng = np.random.default_rng(4)
    res = [domain_classifier(*_same(rng), seed=r, permutations=200) for r in range(REPS)]
    aucs = np.array([r[0] for r in res])
    ps = np.array([r[1] for r in res])
    assert np.mean(ps < 0.05) <= 0.15
    assert abs(aucs.mean() - 0.5) < 0.05


def test_domain_classifier_flags_shift_and_finds_the_new_rows():
    rng = np.random.default_rng(5)
    ref = rng.normal(size=(N, 16))
    cur = rng.normal(size=(N, 16))
    cur[:30] += 2.0  # 30 clearly new rows among 150
    auc, p, newest = domain_classifier(ref, cur, permutations=200)
    assert auc > 0.6 and p < 0.01
    assert len(newest) == 10 and sum(i < 30 for i in newest) >= 8


def test_too_few_rows_gives_nan():
    rng = np.random.default_rng(6)
    assert np.isnan(mmd_test(rng.normal(size=(50, 4)), rng.normal(size=(3, 4)))[1])
    assert np.isnan(domain_classifier(rng.normal(size=(50, 4)), rng.normal(size=(3, 4)))[0])
