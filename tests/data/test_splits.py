"""Held-out validation split: stratified, deterministic, keeps row numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tunelab.data import stratified_split
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
