"""Tasks: one module per training objective, each ending in `TASK = Task(...)` (tasks/base.py).

`get_task(name)` is how every layer above reaches a task. The names are the registry in
config/tasks.py (`TASKS`: config validates `task:` against it and sits below tasks/); each
task's module is tunelab/tasks/<name with _ for ->.py. `tasks/` never imports `methods/`.
"""

from __future__ import annotations

import importlib

from tunelab.config.tasks import DEFAULT_TASK, TASKS
from tunelab.tasks.base import Task

# task name (as written in a config's `task:`) -> its module under tunelab.tasks
REGISTRY = {name: name.replace("-", "_") for name in TASKS}


def get_task(name: str) -> Task:
    """The task called `name`; a ConfigError naming `task` when there is none."""
    module = REGISTRY.get(name)
    if module is None:
        from tunelab.errors import ConfigError

        raise ConfigError("task", "unknown task", name, has_value=True)
    return importlib.import_module(f"tunelab.tasks.{module}").TASK


def all_tasks() -> list[Task]:
    """Every registered task, in registry order (for lookups by head or architecture)."""
    return [get_task(name) for name in REGISTRY]


__all__ = ["DEFAULT_TASK", "REGISTRY", "Task", "all_tasks", "get_task"]
