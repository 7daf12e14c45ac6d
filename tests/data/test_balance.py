"""Random over- and undersampling of the training split."""

from __future__ import annotations

import numpy as np
import pytest

from tunelab.data.balance import oversample, undersample

Y = np.array(["pos"] * 50 + ["neg"] * 20 + ["neutral"] * 5)[
    np.random.default_rng(0).permutation(75)
]


def test_oversample_equalizes_and_keeps_originals():
    idx = oversample(Y, seed=0)
    values, counts = np.unique(Y[idx], return_counts=True)
    assert counts.tolist() == [50, 50, 50] and len(idx) == 150
    assert set(idx.tolist()) == set(range(75))  # every original row is still there
    assert np.array_equal(np.sort(idx), idx)
    # the extra rows come from the small classes only, spread evenly over their members
    seen = np.bincount(idx, minlength=75)
    assert seen[Y == "pos"].tolist() == [1] * 50
    assert seen[Y == "neutral"].tolist() == [10] * 5  # 50 / 5
    assert sorted(set(seen[Y == "neg"].tolist())) == [2, 3]  # 50 / 20: 2 or 3 times each
    assert np.array_equal(oversample(Y, seed=0), idx)
    assert not np.array_equal(oversample(Y, seed=1), idx)


def test_undersample_equalizes_without_repeats():
    idx = undersample(Y, seed=0)
    assert np.unique(Y[idx], return_counts=True)[1].tolist() == [5, 5, 5]
    assert len(set(idx.tolist())) == 15 and set((Y == "neutral").nonzero()[0]) <= set(idx)
    assert np.array_equal(undersample(Y, seed=0), idx)
    assert not np.array_equal(undersample(Y, seed=1), idx)


def test_balanced_and_integer_labels_unchanged_in_size():
    y = np.array([0, 1, 2] * 4)
    assert oversample(y, 0).tolist() == list(range(12))
    assert undersample(y, 0).tolist() == list(range(12))


def test_multi_label_and_empty_rejected():
    y = np.array([[1, 0], [0, 1], [1, 1]])  # (N, C) multi-hot
    for fn in (oversample, undersample):
        with pytest.raises(ValueError, match="needs single-label data; use method: class_weights"):
            fn(y, seed=0)
        with pytest.raises(ValueError, match="empty"):
            fn(np.array([]), seed=0)
