"""What the config knows of a task: the `data:` rules that depend on it, by task name.

`TASKS` is the registry of tasks, the one list of their names: a config's `task:` accepts
them and `tunelab.tasks.REGISTRY` finds each one's module (the name with `_` for `-`).
config sits below tasks/ and cannot ask a `Task` (tasks/base.py) for its data rules.
A task without special rules needs no entry here: `task_rules` gives it the defaults.
tests/config/test_task_rules.py checks that the names agree with the registry.
"""

from __future__ import annotations

from dataclasses import dataclass

# the registry: one line per task (its module is tunelab/tasks/<name with _ for ->.py)
TASKS = (
    "classification",
    "token-classification",
    "mlm",
    "causal-lm",
    "seq2seq",
    "extractive-qa",
)
DEFAULT_TASK = "classification"  # a config's `task:` when it names none; old tunelab.json too


@dataclass(frozen=True)
class TaskRules:
    # data keys only this task reads; set (not left at its default) for another task: an error
    data_keys: tuple[str, ...] = ()
    word_rows: bool = False  # rows are word lists: data.prepare (text columns) cannot take them
    packs: bool = False  # data.packing puts several examples in one row
    multitask: bool = False  # a head on a shared encoder: may be a procedure.tasks entry


TASK_RULES: dict[str, TaskRules] = {
    "classification": TaskRules(data_keys=("text_pair", "clean_markup"), multitask=True),
    "token-classification": TaskRules(word_rows=True, multitask=True),
    "causal-lm": TaskRules(packs=True),
    "extractive-qa": TaskRules(data_keys=("question", "context", "answers", "doc_stride")),
}
MULTITASK_TASKS = tuple(name for name, rules in TASK_RULES.items() if rules.multitask)


def task_rules(task: str) -> TaskRules:
    return TASK_RULES.get(task, TaskRules())


def readers(key: str) -> str:
    """The tasks that read data key `key`, for an error message (e.g. classification)."""
    return " and ".join(n for n, r in TASK_RULES.items() if key in r.data_keys)


def foreign_key(data, task: str, skip: tuple[str, ...] = ()) -> str | None:
    """The first data key that another task reads, set in `data` (away from its default) for
    `task`, which does not read it; None when there is none. `skip`: keys checked elsewhere."""
    own = task_rules(task).data_keys
    for rules in TASK_RULES.values():
        for key in rules.data_keys:
            if key in own or key in skip:
                continue
            if getattr(data, key) != type(data).model_fields[key].default:
                return key
    return None
