"""How the loss of one training step is formed: `procedure:` in a run config.

One procedure per run, picked by `name`; each has its own keys. `standard` (the default) is
the task's loss on a batch. See training/procedures/ for what each does.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tunelab.config.data import DataConfig, check_text_pair
from tunelab.config.tasks import MULTITASK_TASKS

PROCEDURES = ("standard", "distill", "multitask", "adversarial", "continual")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StandardProcedure(_Strict):
    name: Literal["standard"] = "standard"


class DistillProcedure(_Strict):
    """loss = alpha * task loss + (1 - alpha) * T^2 * KL(teacher/T || student/T)."""

    name: Literal["distill"]
    teacher: str = Field(
        description="a tunelab run or model dir, or any loadable model with the task's head; "
        "its labels (names, order) and vocabulary must be the run's"
    )
    alpha: float = Field(0.5, ge=0, le=1, description="weight of the task loss")
    temperature: float = Field(2.0, gt=0, description="softens both distributions")
    cache_teacher_logits: bool = Field(
        False,
        description="run the teacher once over the training set and keep its logits "
        "(causal-lm: refused past 2 GiB of fp16 logits)",
    )
    student_layers: int | None = Field(
        None,
        gt=0,
        description="build the student from the teacher's embeddings, first k layers and "
        "head (model: then only gives the tokenizer); None: the student is `model:`",
    )


class AdversarialProcedure(_Strict):
    """Perturb the input embeddings toward higher loss (FGM: one step, PGD: several)."""

    name: Literal["adversarial"]
    attack: Literal["fgm", "pgd"] = Field(
        "fgm", description="fgm: one step along the gradient; pgd: `steps` projected steps"
    )
    epsilon: float = Field(
        0.1,
        gt=0,
        description="size of each example's perturbation of the word embeddings (its norm); "
        "scale it to the model's word vectors (MiniLM's have norm ~1; 1.0 stops it learning)",
    )
    norm: Literal["l2", "linf"] = Field(
        "l2", description="l2: epsilon * g/||g|| per example; linf: epsilon * sign(g)"
    )
    steps: int = Field(3, ge=1, description="pgd: ascent steps")
    step_size: float | None = Field(
        None, gt=0, description="pgd: per-step size; None: epsilon/steps*1.5"
    )
    weight: float = Field(
        1.0, ge=0, description="weight of the adversarial loss next to the clean one"
    )


class ContinualProcedure(_Strict):
    """Keep an earlier task while learning a new one."""

    name: Literal["continual"]
    replay: str | None = Field(
        None, description="file of earlier training data to mix back in (same columns)"
    )
    replay_ratio: float = Field(
        0.2,
        ge=0,
        lt=1,
        description="share of the training rows drawn from `replay` (a fixed seeded sample, "
        "repeated when the file is short)",
    )
    penalty: Literal["none", "l2", "ewc"] = Field(
        "none", description="pull toward the starting weights: plain L2 or Fisher-weighted (EWC)"
    )
    penalty_weight: float = Field(1.0, ge=0)
    fisher_rows: int = Field(200, gt=0, description="ewc: rows of `replay` for the Fisher estimate")
    fisher_labels: Literal["predicted", "true"] = Field(
        "predicted",
        description="ewc: log-likelihood of the starting model's predicted label (Fisher) "
        "or of the file's label (empirical Fisher)",
    )
    old_validation: str | None = Field(
        None, description="the earlier task's held-out file: scored before and after (forgetting)"
    )

    @model_validator(mode="after")
    def _check(self) -> ContinualProcedure:
        if self.replay is None and self.penalty == "none" and self.old_validation is None:
            raise ValueError(
                "continual needs replay: FILE, penalty: l2 | ewc, or (plain fine-tuning with "
                "a forgetting check) old_validation: FILE"
            )
        if self.penalty == "ewc" and self.replay is None:
            raise ValueError("penalty: ewc estimates the Fisher on earlier data; set replay: FILE")
        return self


_TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")  # a folder name and a module key


class TaskDataConfig(DataConfig):
    """A multitask entry's `data:` section: a `data:` section without the prepare stage."""

    prepare: None = Field(
        None, description="not with procedure multitask: prepare each task's data first"
    )

    @field_validator("prepare", mode="before")
    @classmethod
    def _no_prepare(cls, value: object) -> None:
        if value is not None:
            raise ValueError(
                "not supported with procedure multitask; prepare each task's data first "
                "(`tunelab data prepare`) and point train/validation at the result"
            )
        return None


class MultitaskEntry(_Strict):
    name: str = Field(description="short name used in metrics (e.g. sst2)")
    task: Literal[MULTITASK_TASKS]  # type: ignore[valid-type]
    data: TaskDataConfig = Field(
        description="a data: section for this task (train, validation, columns)"
    )
    weight: float = Field(1.0, gt=0, description="loss weight")

    @model_validator(mode="after")
    def _check(self) -> MultitaskEntry:
        if not _TASK_NAME.match(self.name):
            raise ValueError(f"name: letters, digits, '_' and '-' only, got {self.name!r}")
        check_text_pair(self.data, self.task)
        return self


class MultitaskProcedure(_Strict):
    """One shared encoder, one head per task."""

    name: Literal["multitask"]
    tasks: list[MultitaskEntry] = Field(
        min_length=2,
        description=f"each: name (letters, digits, _ -), task ({' | '.join(MULTITASK_TASKS)}), "
        "data (a data: section), weight (loss weight, default 1)",
    )
    sampling: Literal["size", "temperature", "round_robin"] = Field(
        "temperature", description="which task the next batch comes from"
    )
    temperature: float = Field(2.0, ge=1, description="sampling: temperature; p ~ size^(1/T)")

    @model_validator(mode="after")
    def _check(self) -> MultitaskProcedure:
        seen: set[str] = set()
        for i, entry in enumerate(self.tasks):
            if entry.name in seen:
                raise ValueError(f"tasks.{i}.name: two tasks share this name, got {entry.name!r}")
            seen.add(entry.name)
        return self


PROCEDURE_CLASSES: dict[str, type[BaseModel]] = {
    "standard": StandardProcedure,
    "distill": DistillProcedure,
    "multitask": MultitaskProcedure,
    "adversarial": AdversarialProcedure,
    "continual": ContinualProcedure,
}

Procedure = Annotated[
    StandardProcedure
    | DistillProcedure
    | AdversarialProcedure
    | ContinualProcedure
    | MultitaskProcedure,
    Field(discriminator="name"),
]
