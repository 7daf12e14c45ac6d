"""Hold out part of the training data as a validation set when none is given.

Stratified by label so that a small validation set still sees every class in its share;
the original row numbers stay in the index so errors and predictions point at the file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tunelab.errors import DataError


def stratified_split(
    df: pd.DataFrame, y: np.ndarray, size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    """Split `df`/`y` into (kept_df, held_out_df, kept_y, held_out_y).

    `size` is the held-out share (0 < size < 1); at least one row is held out and one kept.
    Single-label `y` (N,) is stratified by class; multi-hot `y` (N, C) by each row's most
    common label. When stratifying is impossible (a class with one row, or fewer held-out
    rows than classes) the split is plain random. Same seed, same split; both parts keep
    file order and the original row-number index.
    """
    from sklearn.model_selection import train_test_split

    if not 0 < size < 1:
        raise ValueError(f"size must be between 0 and 1, got {size}")
    y = np.asarray(y)
    n = len(df)
    if len(y) != n:
        raise ValueError(f"df has {n} rows but y has {len(y)}")
    if n < 2:
        raise DataError(
            str(df.attrs.get("source", "<data>")),
            f"too few rows to split off a validation set ({n}); give data.validation",
        )
    n_held = min(max(1, round(n * size)), n - 1)
    strata = _strata(y)
    classes, counts = np.unique(strata, return_counts=True)
    stratify = strata if counts.min() >= 2 and len(classes) <= min(n_held, n - n_held) else None
    positions = np.arange(n)
    try:
        kept, held = train_test_split(
            positions, test_size=n_held, random_state=seed, stratify=stratify
        )
    except ValueError:  # sklearn's own feasibility rules; random beats failing
        kept, held = train_test_split(positions, test_size=n_held, random_state=seed)
    kept, held = np.sort(kept), np.sort(held)
    kept_df, held_df = df.iloc[kept], df.iloc[held]
    kept_df.attrs.update(df.attrs)
    held_df.attrs.update(df.attrs)
    return kept_df, held_df, y[kept], y[held]


def _strata(y: np.ndarray) -> np.ndarray:
    """Class per row; for multi-hot rows the label most frequent overall, -1 for none."""
    if y.ndim == 1:
        return y
    freq = y.sum(axis=0)  # (C,)
    scored = np.where(y > 0, freq[None, :], -1)  # (N, C)
    return np.where(y.max(axis=1) > 0, scored.argmax(axis=1), -1)
