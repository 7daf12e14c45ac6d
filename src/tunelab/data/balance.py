"""Rebalance a training split by resampling rows, so that every class is seen equally often.

Random oversampling repeats rows of the smaller classes (no information lost, more
overfitting risk); undersampling drops rows of the larger classes (faster, loses data).
Both work on single-label class ids only: with several labels per row, fixing one class's
count shifts the others, so multi-label data should use `method: class_weights` instead.
"""

from __future__ import annotations

import numpy as np


def oversample(y: np.ndarray, seed: int) -> np.ndarray:
    """Sorted row indices (with repeats) giving every class the largest class's count.

    Every original row is kept; a smaller class's rows are repeated as evenly as possible
    (whole extra copies, then a random subset without replacement for the remainder), so
    no row is seen much more often than its classmates. Same seed, same indices.
    """
    members = _members(y)
    rng = np.random.default_rng(seed)
    top = max(len(m) for m in members)
    extra = []
    for m in members:
        copies, rest = divmod(top - len(m), len(m))
        extra += [np.tile(m, copies), rng.choice(m, rest, replace=False)]
    return np.sort(np.concatenate([np.arange(len(y)), *extra]))


def undersample(y: np.ndarray, seed: int) -> np.ndarray:
    """Sorted row indices (no repeats) giving every class the smallest class's count,
    drawn at random without replacement within each class. Same seed, same indices."""
    members = _members(y)
    rng = np.random.default_rng(seed)
    low = min(len(m) for m in members)
    return np.sort(np.concatenate([rng.choice(m, low, replace=False) for m in members]))


def _members(y: np.ndarray) -> list[np.ndarray]:
    """Row indices (positions within `y`) of each class present, in sorted class order."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(
            f"over/undersampling needs single-label data; use method: class_weights "
            f"(got labels of shape {y.shape})"
        )
    if len(y) == 0:
        raise ValueError("cannot rebalance an empty split")
    inverse = np.unique(y, return_inverse=True)[1].reshape(-1)
    order = np.argsort(inverse, kind="stable")
    return np.split(order, np.cumsum(np.bincount(inverse))[:-1])
