"""Knowledge distillation: a student learns from the task's labels and from a teacher.

    loss = alpha * task_loss + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T))

The KL term is averaged over the positions the task scores: one per row for classification
(multi-label: a Bernoulli KL per label), the labelled tokens for token classification, and
for causal-lm the next-token positions whose (shifted) label is not -100. T^2 keeps the
term's gradients on the scale of the task loss's as T grows (Hinton et al. 2015).

`cache_teacher_logits: true` runs the teacher once over the training features before the
loop and keeps, per row, its logits at the scored positions; each step looks them up by the
micro-batch's row indices instead of running the teacher. For causal-lm these are full
vocabulary rows (fp16), so caching is refused with a clear error past `CACHE_BUDGET_BYTES`
(set the option to false: the teacher then runs live every step).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from tunelab.data.batching import collate as default_collate
from tunelab.data.batching import sorted_batches
from tunelab.errors import ConfigError
from tunelab.models.loading import count_parameters
from tunelab.tasks import get_task
from tunelab.training.procedures import Procedure, ProcedureContext
from tunelab.training.procedures.distill_models import (
    Teacher,
    check_teacher,
    check_vocab,
    load_teacher,
)

IGNORE = -100
CACHE_BUDGET_BYTES = 2 * 1024**3  # causal-lm caches past this are refused
CACHE_BATCH = 64


def scored(logits: torch.Tensor, labels: torch.Tensor, head_kind: str) -> torch.Tensor:
    """The logits at the positions the task's loss scores: (M, C), rows in batch order.
    `head_kind`: the task's (tasks/base.py), one of distill_models.HEADS."""
    if head_kind == "sequence":
        return logits  # (B, C)
    if head_kind == "token":
        return logits[labels != IGNORE]  # (B, T, C) -> (M, C)
    return logits[:, :-1][labels[:, 1:] != IGNORE]  # causal: (B, T, V) -> (M, V)


def kd_loss(
    student: torch.Tensor, teacher: torch.Tensor, temperature: float, multi_label: bool = False
) -> torch.Tensor:
    """T^2 * KL(teacher/T || student/T), averaged over positions (multi-label: over labels)."""
    s = student.float() / temperature  # (M, C)
    t = teacher.float().to(s.device) / temperature
    if s.shape[0] == 0:
        return s.sum() * 0.0
    if multi_label:  # a Bernoulli per label
        p = torch.sigmoid(t)
        kl = p * (F.logsigmoid(t) - F.logsigmoid(s)) + (1 - p) * (
            F.logsigmoid(-t) - F.logsigmoid(-s)
        )
        return temperature**2 * kl.mean()
    kl = F.kl_div(
        F.log_softmax(s, dim=-1), F.log_softmax(t, dim=-1), log_target=True, reduction="batchmean"
    )
    return temperature**2 * kl


class Distill(Procedure):
    name = "distill"

    def __init__(
        self,
        settings,
        task: str,
        teacher: Teacher,
        train=None,
        collate=default_collate,
        pad_id: int = 0,
        multi_label: bool = False,
    ):
        self.settings, self.task, self.teacher = settings, task, teacher
        self.head = get_task(task).head_kind
        self.alpha, self.temperature = settings.alpha, settings.temperature
        self.train, self.collate, self.pad_id = train, collate, pad_id
        self.multi_label = multi_label
        self.cache: list[torch.Tensor] | None = None
        self.cache_seconds: float | None = None
        self.device = torch.device("cpu")

    def setup(self, model, device) -> None:
        self.device = torch.device(device)
        self.teacher.model.to(self.device)
        if self.settings.cache_teacher_logits and self.alpha < 1 and self.train is not None:
            self.cache = self.cache_logits(self.train)

    @torch.no_grad()
    def cache_logits(self, features) -> list[torch.Tensor]:
        """Per training row, the teacher's logits at its scored positions (M_i, C), on CPU."""
        t0 = time.perf_counter()
        batches = sorted_batches(features.lengths, CACHE_BATCH)
        if self.head == "causal":  # full vocabulary rows
            self._check_budget(features, batches)
        dtype = torch.float16 if self.head == "causal" else torch.float32
        out: list[torch.Tensor | None] = [None] * len(features)
        for index in batches:
            batch = {
                k: v.to(self.device) for k, v in self.collate(features, index, self.pad_id).items()
            }
            labels = batch.pop("labels")
            logits = scored(self.teacher.model(**batch).logits, labels, self.head)
            counts = self._counts(labels)
            for row, part in zip(index, logits.split(counts)):
                out[int(row)] = part.to("cpu", dtype)
        self.cache_seconds = round(time.perf_counter() - t0, 3)
        print(
            f"distill: cached the teacher's logits for {len(out)} rows in {self.cache_seconds:.1f} s"
        )
        return out  # type: ignore[return-value]

    def _counts(self, labels: torch.Tensor) -> list[int]:
        """Scored positions per row of a batch."""
        if self.head == "sequence":
            return [1] * labels.shape[0]
        mask = labels != IGNORE if self.head == "token" else labels[:, 1:] != IGNORE
        return mask.sum(dim=1).tolist()

    def _check_budget(self, features, batches) -> None:
        vocab = self.teacher.model.get_output_embeddings().weight.shape[0]
        positions = sum(
            sum(self._counts(self.collate(features, index, self.pad_id)["labels"]))
            for index in batches
        )
        need = positions * vocab * 2  # fp16
        if need > CACHE_BUDGET_BYTES:
            raise ConfigError(
                "procedure.cache_teacher_logits",
                f"caching would keep {positions:,} scored tokens x {vocab:,} vocabulary logits "
                f"= {need / 1024**3:.1f} GiB (limit {CACHE_BUDGET_BYTES / 1024**3:.0f} GiB); "
                "set it to false (the teacher then runs every step) or use fewer rows",
            )

    def teacher_logits(self, batch: dict, labels: torch.Tensor, rows) -> torch.Tensor:
        """(M, C): from the cache by row index, else a live no-grad forward pass."""
        if self.cache is not None:
            return torch.cat([self.cache[int(r)] for r in rows]).to(self.device)
        with torch.no_grad():
            return scored(self.teacher.model(**batch).logits, labels, self.head)

    def loss(self, model, batch: dict, labels, task_loss, weights, rows) -> torch.Tensor:
        logits = model(**batch).logits
        hard = task_loss(logits, labels, weights)
        if self.alpha >= 1:  # no distillation: the teacher need not run
            return hard
        soft = kd_loss(
            scored(logits, labels, self.head),
            self.teacher_logits(batch, labels, rows),
            self.temperature,
            self.multi_label,
        )
        return self.alpha * hard + (1 - self.alpha) * soft

    def summary(self) -> dict:
        return {
            "name": self.name,
            "teacher": self.settings.teacher,
            "alpha": self.alpha,
            "temperature": self.temperature,
            "cache_teacher_logits": self.cache is not None,
            "cache_seconds": self.cache_seconds,
            "student_layers": self.settings.student_layers,
            "teacher_params": count_parameters(self.teacher.model)[1],
        }


def build(ctx: ProcedureContext) -> Distill:
    settings = ctx.cfg.procedure
    task = ctx.cfg.task
    teacher = load_teacher(settings.teacher, task)
    labels = getattr(ctx.data, "labels", None)
    check_teacher(teacher, task, labels.names if labels is not None else None, ctx.tokenizer)
    if get_task(task).head_kind == "causal":
        check_vocab(teacher.model, ctx.model)
    multi_label = bool(labels is not None and getattr(labels, "multi_label", False))
    return Distill(
        settings,
        task,
        teacher,
        train=ctx.feats.get("train"),
        collate=getattr(ctx.task, "collate", default_collate),
        pad_id=ctx.tokenizer.pad_token_id if ctx.tokenizer.pad_token_id is not None else 0,
        multi_label=multi_label,
    )
