"""Tasks: one module per training objective, each ending in `TASK = Task(...)` (tasks/base.py).

`get_task(name)` is how every layer above reaches a task; the registry below is the one place
that lists them (add a line here for a new task). `tasks/` never imports `methods/`.
"""

from __future__ import annotations

import importlib

# the task of a config or a saved model that names none (tunelab.json before tasks existed);
# config holds it, as it holds the names `task:` accepts (config/tasks.py)
from tunelab.config.tasks import DEFAULT_TASK
from tunelab.tasks.base import Task

# the registry: task name (as written in a config's `task:`) -> its module under tunelab.tasks
REGISTRY = {
    "classification": "classification",
    "token-classification": "token_classification",
    "mlm": "mlm",
    "causal-lm": "causal_lm",
    "seq2seq": "seq2seq",
    "extractive-qa": "extractive_qa",
}


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
