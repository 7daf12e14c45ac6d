"""Metrics per value of a group column (`tunelab eval --group COL`): the fairness check.

A model can be good on average and poor for one group (one domain, one dialect, one
length bucket). Each value of the column is a slice; every model's headline metrics are
recomputed on the slice's rows from its kept per-row outputs (no model call), with a
bootstrap interval, and the gap between the best and the worst slice is reported per
metric. Slices under `min_rows` rows are flagged: their numbers move a lot by chance, so the
gap is taken over the other slices when at least two are left.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tunelab.data import read_table
from tunelab.errors import DataError
from tunelab.evaluation.report.rows import RowOutputs
from tunelab.metrics.classification import primary_metric_mode
from tunelab.metrics.stats import bootstrap_ci

MISSING = "(missing)"


def _key(value: Any) -> str:
    """A cell as a slice name: missing cells together under MISSING; 1.0 reads as 1."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple, dict, np.ndarray)):
        return str(list(value) if isinstance(value, np.ndarray) else value)
    return str(value)


def read_groups(path, column: str, n: int, rows: list[int] | None = None) -> list[str]:
    """The group value of each scored row: row i of the file, or the file row rows[i] (the
    reader's row number) when a task skipped rows. DataError naming the file and column when
    the column is not there."""
    df = read_table(path)
    if column not in df.columns:
        shown = ", ".join(map(str, df.columns[:12]))
        raise DataError(
            str(path), f"no column '{column}' to group by (columns: {shown})", column=column
        )
    cells = df[column]
    values = cells.loc[rows].tolist() if rows is not None else cells.tolist()
    if len(values) != n:
        raise DataError(str(path), f"{len(values)} rows to group but {n} scored", column=column)
    return [_key(v) for v in values]


def _gap(per_slice: list[tuple[str, float | None]], mode: str) -> dict | None:
    """{"best", "best_slice", "worst", "worst_slice", "gap"} of one metric over slices."""
    known = [(s, v) for s, v in per_slice if v is not None and math.isfinite(v)]
    if len(known) < 2:
        return None
    ordered = sorted(known, key=lambda sv: sv[1], reverse=(mode == "max"))
    (best_s, best), (worst_s, worst) = ordered[0], ordered[-1]
    return {
        "best": best,
        "best_slice": best_s,
        "worst": worst,
        "worst_slice": worst_s,
        "gap": abs(best - worst),
    }


def slice_metrics(
    outputs: list[RowOutputs],
    groups: list[str],
    *,
    column: str,
    min_rows: int = 30,
    samples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """Per slice and model the headline metrics (with an interval when the slice has >= 2 rows
    and `samples` > 0),
    and per model and metric the best-worst gap.

    Returns {"column", "min_rows", "slices": [{"value", "n", "small", "models": {name:
    {metric: {"value", "low", "high"}}}}] (largest slice first), "gaps": {name: {metric:
    {"best", "best_slice", "worst", "worst_slice", "gap"}}}, "gap_over": "all" | "large"}.
    """
    labels = np.asarray(groups, dtype=object)
    values = sorted(set(groups), key=lambda v: (-int(np.sum(labels == v)), v))
    slices = []
    for value in values:
        idx = np.flatnonzero(labels == value)  # (n_s,) rows of this slice
        models: dict[str, dict] = {}
        for out in outputs:
            if len(idx) >= 2 and samples > 0:

                def fn(sub, out=out, idx=idx):
                    return out.metric_fn(idx[sub])

                ci = bootstrap_ci(fn, len(idx), samples=samples, level=level, seed=seed)
                models[out.name] = {
                    k: {"value": v["value"], "low": v["low"], "high": v["high"]}
                    for k, v in ci.items()
                }
            else:
                models[out.name] = {
                    k: {"value": float(v), "low": None, "high": None}
                    for k, v in out.metric_fn(idx).items()
                }
        slices.append(
            {
                "value": value,
                "n": int(len(idx)),
                "small": bool(len(idx) < min_rows),
                "models": models,
            }
        )
    large = [s for s in slices if not s["small"]]
    used, over = (large, "large") if len(large) >= 2 else (slices, "all")
    gaps: dict[str, dict] = {}
    for out in outputs:
        metrics = list(slices[0]["models"][out.name]) if slices else []
        gaps[out.name] = {}
        for metric in metrics:
            gap = _gap(
                [(s["value"], s["models"][out.name][metric]["value"]) for s in used],
                primary_metric_mode(metric),
            )
            if gap is not None:
                gaps[out.name][metric] = gap
    return {
        "column": column,
        "min_rows": min_rows,
        "slices": slices,
        "gaps": gaps,
        "gap_over": over,
    }
