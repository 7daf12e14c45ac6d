"""Splits: held-out validation, ratio splits (stratified, grouped), k-fold, leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tunelab.data import stratified_split
from tunelab.data.dedup import dedup_key
from tunelab.data.splits import kfold_indices, leaked, ratio_split
from tunelab.errors import DataError


def data(labels: list, start: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
    df = pd.DataFrame({"text": [f"t{i}" for i in range(len(labels))]})
    df.index = pd.RangeIndex(start, start + len(labels))
    df.attrs["source"] = "train.jsonl"
    return df, np.asarray(labels)


def test_stratified_keeps_class_ratio():
    df, y = data([0] * 70 + [1] * 20 + [2] * 10, start=5)
    kept_df, held_df, kept_y, held_y = stratified_split(df, y, 0.2, seed=0)
    assert len(held_df) == 20 and len(kept_df) == 80
    for c, n in {0: 70, 1: 20, 2: 10}.items():
        assert abs((held_y == c).sum() - n * 0.2) <= 1
    # row-number index kept, parts disjoint and complete, labels still aligned with rows
    assert sorted(kept_df.index.tolist() + held_df.index.tolist()) == list(range(5, 105))
    assert list(held_df.index) == sorted(held_df.index)
    assert (y[held_df.index - 5] == held_y).all() and (y[kept_df.index - 5] == kept_y).all()
    assert held_df.attrs["source"] == "train.jsonl"


def test_deterministic_per_seed():
    df, y = data([0, 1] * 50)
    a = stratified_split(df, y, 0.1, seed=42)[1].index.tolist()
    b = stratified_split(df, y, 0.1, seed=42)[1].index.tolist()
    c = stratified_split(df, y, 0.1, seed=7)[1].index.tolist()
    assert a == b and a != c


def test_singleton_class_falls_back_to_random():
    df, y = data([0] * 9 + [1])
    kept_df, held_df, kept_y, held_y = stratified_split(df, y, 0.2, seed=0)
    assert len(held_df) == 2 and len(kept_df) == 8


def test_tiny_sets():
    df, y = data([0, 1])
    kept_df, held_df, _, _ = stratified_split(df, y, 0.1, seed=0)
    assert len(kept_df) == 1 and len(held_df) == 1
    df, y = data([0, 1, 2, 0, 1, 2])  # more classes than held-out rows
    assert len(stratified_split(df, y, 0.1, seed=0)[1]) == 1
    with pytest.raises(
        DataError,
        match=r"train\.jsonl: too few rows to split off a validation set.*data\.validation",
    ):
        stratified_split(*data([0]), 0.1, seed=0)


def test_multi_label_split():
    rng = np.random.default_rng(0)
    y = (rng.random((50, 4)) > 0.6).astype(np.float32)  # (N, C) multi-hot
    df, _ = data([0] * 50)
    kept_df, held_df, kept_y, held_y = stratified_split(df, y, 0.2, seed=1)
    assert held_y.shape == (10, 4) and kept_y.shape == (40, 4)
    assert (y[held_df.index - 1] == held_y).all()


def check_partition(parts: dict[str, np.ndarray], n: int) -> None:
    every = np.concatenate(list(parts.values()))
    assert len(every) == n and np.array_equal(np.sort(every), np.arange(n))
    assert all(np.array_equal(p, np.sort(p)) for p in parts.values())


@pytest.mark.parametrize("n", [1000, 997, 31])
@pytest.mark.parametrize("ratios", [(0.8, 0.1, 0.1), (0.7, 0.15, 0.15)])
def test_ratio_split_sizes(n, ratios):
    shares = dict(zip(["train", "validation", "test"], ratios))
    parts = ratio_split(n, shares, seed=0)
    assert list(parts) == ["train", "validation", "test"]
    check_partition(parts, n)
    for name, share in shares.items():
        assert abs(len(parts[name]) - n * share) <= 1


def test_ratio_split_stratified_keeps_class_shares():
    rng = np.random.default_rng(0)
    y = rng.choice(4, size=3000, p=[0.55, 0.3, 0.1, 0.05])
    parts = ratio_split(3000, {"train": 0.7, "validation": 0.15, "test": 0.15}, seed=1, y=y)
    check_partition(parts, 3000)
    overall = np.bincount(y) / len(y)
    for idx in parts.values():
        assert np.abs(np.bincount(y[idx], minlength=4) / len(idx) - overall).max() < 0.02
    # a small split still gets its exact share of each class
    tiny = ratio_split(60, {"train": 0.5, "test": 0.5}, seed=0, y=np.repeat([0, 1], 30))
    assert (np.repeat([0, 1], 30)[tiny["test"]] == 0).sum() == 15


def test_ratio_split_multi_label_rarest_label_reaches_every_split():
    rng = np.random.default_rng(2)
    y = (rng.random((500, 4)) < [0.6, 0.4, 0.3, 0.0]).astype(np.float32)  # (N, C)
    y[rng.choice(500, 20, replace=False), 3] = 1  # a rare label on 20 rows
    parts = ratio_split(500, {"train": 0.8, "validation": 0.1, "test": 0.1}, seed=0, y=y)
    check_partition(parts, 500)
    assert [int(y[idx, 3].sum()) for idx in parts.values()] == [16, 2, 2]


def test_ratio_split_groups_never_straddle():
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(300), rng.integers(1, 9, size=300))  # (N,) sizes 1..8
    y = rng.integers(0, 3, size=len(groups))
    n = len(groups)
    ratios = {"train": 0.8, "validation": 0.1, "test": 0.1}
    parts = ratio_split(n, ratios, seed=0, y=y, groups=groups)
    check_partition(parts, n)
    owners = [set(groups[idx]) for idx in parts.values()]
    assert all(not (a & b) for i, a in enumerate(owners) for b in owners[i + 1 :])
    for name, share in ratios.items():  # whole groups of <= 8 rows: sizes close, not exact
        assert abs(len(parts[name]) - n * share) <= 8
    # a few large groups and fewer rows than groups of the others: every split still gets one
    parts = ratio_split(12, ratios, seed=0, groups=np.array([0] * 10 + [1, 2]))
    assert sorted(len(p) for p in parts.values()) == [1, 1, 10]
    with pytest.raises(ValueError, match="2 groups cannot fill 3 splits"):
        ratio_split(4, ratios, seed=0, groups=np.array([0, 0, 1, 1]))


def test_ratio_split_deterministic_and_tiny():
    y = np.arange(200) % 3
    a = ratio_split(200, {"train": 0.8, "test": 0.2}, seed=5, y=y)
    b = ratio_split(200, {"train": 0.8, "test": 0.2}, seed=5, y=y)
    c = ratio_split(200, {"train": 0.8, "test": 0.2}, seed=6, y=y)
    assert np.array_equal(a["test"], b["test"]) and not np.array_equal(a["test"], c["test"])
    parts = ratio_split(3, {"train": 0.8, "validation": 0.1, "test": 0.1}, seed=0)
    assert [len(p) for p in parts.values()] == [1, 1, 1]
    with pytest.raises(ValueError, match="2 rows cannot fill 3 splits"):
        ratio_split(2, {"train": 0.8, "validation": 0.1, "test": 0.1}, seed=0)


def test_kfold_partitions_and_stratifies():
    y = np.array([0] * 60 + [1] * 30 + [2] * 10)
    folds = kfold_indices(100, 5, seed=0, y=y)
    assert len(folds) == 5
    validation = np.concatenate([va for _, va in folds])
    assert np.array_equal(np.sort(validation), np.arange(100))
    for tr, va in folds:
        assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(100))
        assert list(np.bincount(y[va])) == [12, 6, 2]
    again = kfold_indices(100, 5, seed=0, y=y)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    assert not np.array_equal(folds[0][1], kfold_indices(100, 5, seed=1, y=y)[0][1])


def test_kfold_groups_and_errors():
    groups = np.repeat(np.arange(20), 5)
    for y in (None, np.arange(100) % 2):
        folds = kfold_indices(100, 4, seed=0, y=y, groups=groups)
        for tr, va in folds:
            assert not set(groups[tr]) & set(groups[va])
        assert np.array_equal(np.sort(np.concatenate([va for _, va in folds])), np.arange(100))
    assert len(kfold_indices(10, 3, seed=0, y=np.arange(10))) == 3  # singleton classes
    with pytest.raises(ValueError, match="k-fold needs"):
        kfold_indices(100, 30, seed=0, groups=groups)


def test_leaked_finds_planted_leaks():
    train = ["A great movie!", "terrible plot", "fine acting"]
    test = ["a great movie", "new text", "Terrible   plot.", "another one"]
    keys = [dedup_key(t) for t in train]
    assert leaked(keys, [dedup_key(t) for t in test]).tolist() == [0, 2]
    assert leaked(iter(keys), ["nothing here"]).tolist() == []
