"""Class weights for the loss of a skewed single-label training split, made safe for rare classes.

sklearn's "balanced" weight, N / (K * n_c) over the K classes present, grows without bound as
a class shrinks: a class with one row among 37 in three classes gets 12.3, so the model is
pushed to memorize that one row. Two rules keep the weights sane:

- a class with fewer than `RARE_CLASS_ROWS` training rows is not up-weighted: its weight is
  1.0, an average row's (balanced weights average 1 per row). It is too rare to learn from
  either way; `rare_class_warnings` says so, so that the user adds rows or merges the class.
- every weight is capped at `MAX_CLASS_WEIGHT` (10, the cap of multi-label positive weights).
"""

from __future__ import annotations

import numpy as np

RARE_CLASS_ROWS = 5
MAX_CLASS_WEIGHT = 10.0


def balanced_weights(counts: np.ndarray) -> np.ndarray:
    """(K,) float32 weights from training rows per class id, by the rules above."""
    counts = np.asarray(counts, dtype=np.float64)
    weights = counts.sum() / (np.count_nonzero(counts) * np.maximum(counts, 1))
    weights[counts < RARE_CLASS_ROWS] = 1.0
    return np.minimum(weights, MAX_CLASS_WEIGHT).astype(np.float32)


def rare_class_warnings(counts: dict[str, int], what: str = "training example") -> list[str]:
    """One sentence per class with fewer than `RARE_CLASS_ROWS` rows, rarest first."""
    rare = sorted((n, name) for name, n in counts.items() if n < RARE_CLASS_ROWS)
    return [
        f"class '{name}' has {n} {what}{'' if n == 1 else 's'} (fewer than {RARE_CLASS_ROWS}): "
        "too few to learn it, and its loss weight is not raised; add rows, or merge or "
        "drop the class"
        for n, name in rare
    ]
