"""One model's outputs on every row of an eval file, kept per row.

`tunelab eval` recomputes a model's metrics on subsets of rows: bootstrap resamples for the
confidence intervals, the rows of each value of a group column for slices, the same resample
for two models in a paired test. Each task reads the file once, runs the model once and returns
a RowOutputs whose `metric_fn` recomputes its headline metrics from the kept per-row outputs,
with no model call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunelab.metrics.stats import MetricFn


@dataclass
class RowOutputs:
    """Row i here is row i of the file (a task that cannot score a row raises, naming it)."""

    name: str  # display name of the model: "fine-tuned", "base", a run folder's name
    task: str  # the saved model's task
    n: int  # rows scored
    # the task's headline metrics on the rows at these indices (indices may repeat: bootstrap)
    metric_fn: MetricFn
    metrics: dict[str, Any]  # every metric on all rows, as `tunelab eval` printed them before
    # (n,) bool: the row is right, where a row is simply right or wrong (classification);
    # a paired McNemar test uses it
    correct: np.ndarray | None = None
    # task analyses, JSON-able: confusion matrix, calibration, mistakes, samples, lengths ...
    details: dict[str, Any] = field(default_factory=dict)
