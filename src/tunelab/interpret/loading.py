"""Load the model to explain: a tunelab run or model folder of any task and method (through
methods.loading), a plain Hugging Face folder with a classification / token-classification /
causal-LM head, or a loadable causal LM (packaged alias, .gguf, hub id).

A base encoder without a trained head is refused: transformers would bolt on a random head,
and there would be no class to explain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tunelab.data.labels import LabelSpace
from tunelab.errors import ConfigError, TunelabError
from tunelab.tasks import all_tasks, get_task

# the heads explain has decisions for: a class, entities per word, a generated span
HEADS = ("sequence", "token", "causal")


def explainable() -> list[str]:
    """The names of the tasks explain handles (for messages)."""
    return [t.name for t in all_tasks() if t.head_kind in HEADS]


@dataclass
class Subject:
    """A model ready to explain: weights in eval mode, tokenizer, task and labels."""

    name: str
    model: object
    tokenizer: object
    task: str
    labels: LabelSpace | None
    max_length: int

    @property
    def kind(self) -> str:
        """The head kind of the subject's task (tasks/base.py): sequence, token or causal."""
        return get_task(self.task).head_kind


def load_subject(spec: str | Path, flag: str = "MODEL") -> Subject:
    """The model `spec` names, for explaining; errors name `flag` (MODEL or --compare)."""
    from tunelab.methods.loading import load_trained, read_meta

    name = str(spec)
    meta = read_meta(spec) if Path(spec).exists() else None
    if meta is not None:
        task = meta.task
        if get_task(task).head_kind not in HEADS:
            raise ConfigError(
                flag, f"{name} holds a '{task}' model; explain handles {', '.join(explainable())}"
            )
        t = load_trained(spec)
        return Subject(name, t.model, t.tokenizer, task, t.labels, t.max_length)

    from tunelab.methods.any_model import head_task, load_base_model
    from tunelab.models.sources import resolve_model

    source = resolve_model(name)
    task, arch = head_task(source)
    if task is None or get_task(task).head_kind not in HEADS:
        what = ", ".join(arch) or "model without a task head"
        raise ConfigError(
            flag,
            f"{name} is a {what}: a base model without a trained head has no class to "
            "explain; give a classification or token-classification run (or a causal LM)",
        )
    t = load_base_model(source, task)
    return Subject(name, t.model, t.tokenizer, task, t.labels, t.max_length)


def check_compare(main: Subject, other: Subject) -> None:
    """`--compare` must explain the same thing: the same task, and for a labelling task the
    same labels (another run of the same data, e.g. another method)."""
    if other.task != main.task:
        raise ConfigError(
            "--compare",
            f"{other.name} is a '{other.task}' model but {main.name} is '{main.task}'; "
            "compare models of the same task",
        )
    if main.labels is not None and list(other.labels.names) != list(main.labels.names):
        raise ConfigError(
            "--compare",
            f"{other.name} has labels {', '.join(other.labels.names)} but {main.name} has "
            f"{', '.join(main.labels.names)}; compare runs with the same labels",
        )


def label_index(subject: Subject, target: str | None, flag: str = "--target") -> int | None:
    """The index of a named label (None passes through); unknown names list the labels."""
    if target is None:
        return None
    if subject.labels is None:
        raise TunelabError(f"{flag}: a {subject.task} model has no labels to target")
    names = list(subject.labels.names)
    if target not in names:
        raise ConfigError(
            flag, f"'{target}' is not a label of {subject.name}; labels: {', '.join(names)}"
        )
    return names.index(target)
