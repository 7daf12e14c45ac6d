"""The RunResult of a run (results.json) from the training loop's outcome: one builder for
every kind of run (runs/train.py, runs/multitask.py), so the timing and run sections are
made, rounded and named in one place."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tunelab.config import RunConfig
from tunelab.config.run_result import RunInfo, RunResult, Timing


def run_timing(
    loop, *, eval_seconds: float, started: float, baseline_seconds: dict | None = None
) -> Timing:
    """results["timing"]; `started` is the run's time.perf_counter() at its start."""
    fields: dict[str, Any] = {}
    if baseline_seconds is not None:
        fields["baseline_seconds"] = baseline_seconds
    return Timing(
        train_seconds=round(loop.train_seconds, 3),
        train_samples=loop.train_samples,
        samples_per_s=round(loop.samples_per_s, 2),
        train_tokens=loop.train_tokens,
        tokens_per_s=round(loop.tokens_per_s, 2),
        eval_seconds=round(eval_seconds, 3),
        total_seconds=round(time.perf_counter() - started, 3),
        **fields,
    )


def run_info(
    cfg: RunConfig, loop, *, task: str, procedure, trainable: int, total: int, **fields: Any
) -> RunInfo:
    """results["run"]: the config's model/method/output, the loop's course, and `fields`
    (rows, labels, sizes, ... as the kind of run has them)."""
    import torch

    return RunInfo(
        model=cfg.model,
        task=task,
        method=cfg.method.name,
        procedure=procedure.summary(),
        output=str(Path(cfg.output)),
        trainable_params=trainable,
        total_params=total,
        steps=loop.steps,
        epochs=round(loop.epochs, 3),
        stopped_early=loop.stopped_early,
        best=loop.best,
        device="cuda" if torch.cuda.is_available() else "cpu",
        **fields,
    )


def build_result(
    splits: dict[str, dict],
    *,
    timing: Timing,
    run: RunInfo,
    baselines: dict | None = None,
    **sections: Any,
) -> RunResult:
    """The RunResult: metrics per split (only the splits scored), baselines, timing, run, and
    the sections of the kind of run (tasks, distill, forgetting)."""
    present = {k: v for k, v in sections.items() if v is not None}
    return RunResult(**splits, baselines=baselines or {}, timing=timing, run=run, **present)
