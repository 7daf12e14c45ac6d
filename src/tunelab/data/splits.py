"""Split data: hold out a validation set, split by ratios or into k folds, find leaks.

Stratified by label so that a small split still sees every class in its share; grouped
when related rows (same speaker, same source document) must not straddle splits, since
that leaks; deterministic under a seed. `stratified_split` keeps the original row numbers
in the index so errors and predictions point at the file.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

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


def ratio_split(
    n: int,
    ratios: dict[str, float],
    seed: int,
    y: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    stratify: bool = True,
) -> dict[str, np.ndarray]:
    """Sorted row positions per split name (in `ratios` order), covering 0..n-1 once.

    Split sizes follow the ratios by largest remainder (each within one row of n * ratio)
    and every split gets at least one row. With `y` and `stratify`, each class (for
    multi-hot (N, C) `y`: each row's rarest label) is spread over the splits in the
    ratios' shares. With `groups`, a group's rows always land in the same split: groups
    are placed greedily, largest first, where the rows and labels are most wanted, so sizes
    and class shares are then only as close as the group sizes allow. Same seed, same split.
    Raises ValueError when there are fewer rows (or groups) than splits.
    """
    names = list(ratios)
    if n < len(names):
        raise ValueError(f"{n} rows cannot fill {len(names)} splits {names}")
    rng = np.random.default_rng(seed)
    sizes = _apportion(n, np.array([ratios[k] for k in names], dtype=float))
    strata = np.zeros(n, dtype=np.int64)
    if y is not None and stratify:
        y = np.asarray(y)
        if len(y) != n:
            raise ValueError(f"y has {len(y)} rows, expected {n}")
        strata = np.unique(_rarest_strata(y), return_inverse=True)[1].reshape(-1)
    if groups is None:
        split_of = _stratified_assign(strata, sizes, rng)
    else:
        split_of = _group_assign(np.asarray(groups), strata, sizes, rng)
    return {name: np.flatnonzero(split_of == s) for s, name in enumerate(names)}


def kfold_indices(
    n: int, k: int, seed: int, y: np.ndarray | None = None, groups: np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, validation) sorted positions for each of `k` folds; the validation parts
    partition 0..n-1. Stratified by `y` (multi-hot: rarest label) and/or grouped, using
    scikit-learn's (Stratified)(Group)KFold, shuffled under `seed`. A class too small to
    stratify (fewer rows than folds everywhere) falls back to unstratified folds.
    """
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

    units = n if groups is None else len(np.unique(groups))
    if not 2 <= k <= units:
        raise ValueError(
            f"k-fold needs 2 <= k <= {units} {'groups' if groups is not None else 'rows'}, got {k}"
        )
    x = np.zeros((n, 1))
    strata = None if y is None else _rarest_strata(np.asarray(y))
    if strata is not None and np.unique(strata, return_counts=True)[1].max() < k:
        strata = None  # no class can appear in every fold: stratifying is meaningless
    if strata is not None and groups is not None:
        cv = StratifiedGroupKFold(k, shuffle=True, random_state=seed)
    elif strata is not None:
        cv = StratifiedKFold(k, shuffle=True, random_state=seed)
    elif groups is not None:
        cv = GroupKFold(k, shuffle=True, random_state=seed)
    else:
        cv = KFold(k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # "least populated class has only m members": expected
        warnings.simplefilter("ignore", UserWarning)
        folds = list(cv.split(x, strata, groups))
    return [(np.sort(tr), np.sort(va)) for tr, va in folds]


def leaked(train_keys: Iterable[str], other_keys: list[str]) -> np.ndarray:
    """Positions in `other_keys` whose key (from `dedup_key`) also occurs in train."""
    seen = set(train_keys)
    return np.array([i for i, key in enumerate(other_keys) if key in seen], dtype=np.int64)


def _rarest_strata(y: np.ndarray) -> np.ndarray:
    """Class per row; multi-hot rows by their rarest label (rare labels are the ones a
    random split starves), -1 for rows without labels."""
    if y.ndim == 1:
        return y
    freq = y.sum(axis=0).astype(float)  # (C,)
    scored = np.where(y > 0, freq[None, :], np.inf)  # (N, C)
    return np.where(y.max(axis=1) > 0, scored.argmin(axis=1), -1)


def _apportion(n: int, shares: np.ndarray) -> np.ndarray:
    """Integer sizes summing to n, each floor or ceil of n * share, every one >= 1."""
    exact = n * shares / shares.sum()
    sizes = np.floor(exact).astype(np.int64)
    sizes[np.argsort(-(exact - sizes), kind="stable")[: n - sizes.sum()]] += 1
    while (sizes == 0).any():  # tiny n: take a row from the largest split
        sizes[np.argmax(sizes)] -= 1
        sizes[np.argmin(sizes)] += 1
    return sizes


def _stratified_assign(
    strata: np.ndarray, sizes: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Split id per row. Rows ordered by (shuffled class, random) are dealt split labels
    from an evenly interleaved sequence with exactly `sizes` of each, so every class's
    contiguous stretch of that sequence holds each split in about its share."""
    n = len(strata)
    pos = np.concatenate([(np.arange(s) + 0.5) / s for s in sizes])
    sequence = np.repeat(np.arange(len(sizes)), sizes)[np.argsort(pos, kind="stable")]
    class_rank = rng.permutation(strata.max() + 1)[strata]
    order = np.lexsort((rng.random(n), class_rank))
    split_of = np.empty(n, dtype=np.int64)
    split_of[order] = sequence
    return split_of


def _group_assign(
    groups: np.ndarray, strata: np.ndarray, sizes: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Split id per row with whole groups per split: largest groups first (ties shuffled),
    each to the split whose unmet class quotas it fills best (then the most unmet rows)."""
    gid = np.unique(groups, return_inverse=True)[1].reshape(-1)
    n_groups, n_classes = int(gid.max()) + 1, int(strata.max()) + 1
    if n_groups < len(sizes):
        raise ValueError(f"{n_groups} groups cannot fill {len(sizes)} splits")
    # sparse (class, rows) per group: plain Python below is faster than tiny numpy calls
    cell, cell_rows = np.unique(gid * n_classes + strata, return_counts=True)
    per_group: list[list[tuple[int, int]]] = [[] for _ in range(n_groups)]
    for c, k in zip(cell.tolist(), cell_rows.tolist()):
        per_group[c // n_classes].append((c % n_classes, k))
    group_rows = np.bincount(gid, minlength=n_groups)
    share = (np.bincount(strata, minlength=n_classes) / len(strata)).tolist()
    need = [[float(size) * f for f in share] for size in sizes.tolist()]  # (S, K) rows wanted
    left = [float(size) for size in sizes.tolist()]  # (S,) rows wanted
    split_of_group = np.empty(n_groups, dtype=np.int64)
    for g in np.lexsort((rng.random(n_groups), -group_rows)).tolist():
        cells = per_group[g]
        best = max(
            range(len(left)),
            key=lambda s: (left[s] > 0, sum(need[s][c] * k for c, k in cells), left[s]),
        )
        split_of_group[g] = best
        for c, k in cells:
            need[best][c] -= k
            left[best] -= k
    _fill_empty(split_of_group, group_rows, len(sizes))
    return split_of_group[gid]


def _fill_empty(split_of_group: np.ndarray, group_rows: np.ndarray, n_splits: int) -> None:
    """Move the smallest group of the fullest split into any split left without a group."""
    for s in range(n_splits):
        if (split_of_group == s).any():
            continue
        per_split = np.bincount(split_of_group, minlength=n_splits)
        donor = np.flatnonzero(split_of_group == np.argmax(per_split))
        split_of_group[donor[np.argmin(group_rows[donor])]] = s
