"""The tasks of `procedure: {name: multitask}` as the rest of tunelab sees them.

Each `procedure.tasks.<i>.data` is a full DataConfig, validated with the run config (errors
name `procedure.tasks.<i>.data.<key>`); the checks across tasks and the method live in
`MultitaskEntry`, `MultitaskProcedure` and `RunConfig` themselves, so nothing here validates
more than they do.
"""

from __future__ import annotations

from tunelab.config.method import FOLDABLE
from tunelab.config.procedure import StandardProcedure
from tunelab.config.schema import DataConfig, RunConfig
from tunelab.config.update import updated

__all__ = ["FOLDABLE", "task_config", "task_data_configs"]


def task_data_configs(cfg: RunConfig) -> list[DataConfig]:
    """One DataConfig per `procedure.tasks` entry, in order."""
    return [entry.data for entry in cfg.procedure.tasks]


def task_config(cfg: RunConfig, index: int, data: DataConfig) -> RunConfig:
    """The run config as task `index` sees it: a single-task run (procedure standard) with
    that entry's task and `data` (validated like any run config)."""
    task = cfg.procedure.tasks[index].task
    return updated(cfg, task=task, data=data, procedure=StandardProcedure())
