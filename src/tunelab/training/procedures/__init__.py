"""Training procedures: how the loss of one step is formed (`procedure:` in a run config).

The loop calls a procedure at two named points of every micro-batch:

- `loss(model, batch, labels, task_loss, weights, rows)` -> the loss to back-propagate
  (standard: the task's loss on the model's logits; distill adds the teacher's KL term,
  continual a penalty toward the starting weights);
- `after_backward(model, batch, labels, task_loss, weights, scale, backward)` -> None,
  after the backward pass and before the optimizer step (adversarial adds the loss on
  perturbed embeddings here; `backward(loss * scale)` is the loop's own, mixed precision
  included).

`setup(model, device)` runs once after the model is placed on its device. Each procedure is
one module here exposing `build(ctx: ProcedureContext) -> Procedure`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class ProcedureContext:
    """What a procedure may need to build itself: the resolved run config, the task module,
    the loaded data and its features, the tokenizer and the (adapted) model."""

    cfg: Any  # RunConfig
    task: Any  # the Task (tasks/base.py)
    data: Any
    feats: dict
    tokenizer: Any
    model: Any


class Procedure:
    """The standard procedure: the task's loss on one batch."""

    name = "standard"

    def setup(self, model, device) -> None:
        """Once, after the model is on `device` (move a teacher there, snapshot weights)."""

    def loss(self, model, batch: dict, labels, task_loss, weights, rows) -> torch.Tensor:
        out = model(**batch)
        # one logits tensor for most heads; span heads (start and end logits) go whole
        logits = getattr(out, "logits", None)
        return task_loss(out if logits is None else logits, labels, weights)

    def after_backward(
        self, model, batch: dict, labels, task_loss, weights, scale: float, backward
    ) -> None:
        """Extra backward passes (their gradients add to the step's)."""

    def summary(self) -> dict:
        """What results.json records about the procedure (settings, teacher figures, ...)."""
        return {"name": self.name}


def build_procedure(ctx: ProcedureContext) -> Procedure:
    name = ctx.cfg.procedure.name
    if name == "standard":
        return Procedure()
    return importlib.import_module(f"tunelab.training.procedures.{name}").build(ctx)
