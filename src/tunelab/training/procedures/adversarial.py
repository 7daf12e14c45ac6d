"""Adversarial training on the input embeddings: FGM (Miyato et al. 2017) and PGD (Madry et al. 2018).

The clean loss is formed from word embeddings the procedure computes itself and feeds to the
model as `inputs_embeds`, so their gradient is at hand after the loop's backward pass even
when the embedding matrix is frozen (freeze, LoRA). In `after_backward`:

- FGM: one step to the edge of the epsilon ball along that gradient,
  `delta = epsilon * g / ||g||` per example (l2) or `epsilon * sign(g)` (linf);
- PGD: `steps` ascent steps of `step_size` from 0, each projected back onto the ball; the
  first reuses the clean gradient, the others take one forward/backward w.r.t. delta only;

then `weight * loss(embeddings + delta)` is back-propagated with the loop's own backward, so
its gradients add to the clean ones. Pad positions are never perturbed. The perturbation is on
the word embeddings only (position and segment embeddings are added inside the model).
"""

from __future__ import annotations

import torch

from tunelab.errors import ConfigError
from tunelab.tasks import all_tasks, get_task
from tunelab.training.procedures import Procedure, ProcedureContext

HEADS = ("sequence", "token")  # head kinds (tasks/base.py) with a logits loss on whole inputs


def _norm(g: torch.Tensor, kind: str) -> torch.Tensor:
    """(B,) norm of each example's (T, H) slice."""
    flat = g.flatten(1)
    return flat.norm(dim=1) if kind == "l2" else flat.abs().amax(dim=1)


def ascent_direction(g: torch.Tensor, mask: torch.Tensor, norm: str) -> torch.Tensor:
    """Unit step (B, T, H) toward higher loss: g / ||g|| per example (l2) or sign(g) (linf)."""
    g = g * mask
    if norm == "linf":
        return torch.sign(g)
    return g / _norm(g, "l2").clamp_min(1e-12).view(-1, 1, 1)


def project(delta: torch.Tensor, epsilon: float, norm: str) -> torch.Tensor:
    """delta (B, T, H) projected onto the per-example epsilon ball."""
    if norm == "linf":
        return delta.clamp(-epsilon, epsilon)
    factor = (epsilon / _norm(delta, "l2").clamp_min(1e-12)).clamp(max=1.0)
    return delta * factor.view(-1, 1, 1)


class Adversarial(Procedure):
    name = "adversarial"

    def __init__(
        self,
        attack: str = "fgm",
        epsilon: float = 0.1,
        norm: str = "l2",
        steps: int = 3,
        step_size: float | None = None,
        weight: float = 1.0,
    ) -> None:
        self.attack, self.epsilon, self.norm, self.weight = attack, epsilon, norm, weight
        self.steps = steps if attack == "pgd" else 1
        self.step_size = step_size or epsilon / self.steps * 1.5
        self._emb: torch.Tensor | None = None  # (B, T, H) leaf of the last clean forward
        self._sums = {"clean": 0.0, "adversarial": 0.0, "batches": 0}

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _embed(model, batch: dict) -> torch.Tensor:
        model = getattr(model, "module", model)  # under DDP the wrapper has no embeddings
        return model.get_input_embeddings()(batch["input_ids"])  # (B, T, H)

    @staticmethod
    def _forward(model, batch: dict, embeds: torch.Tensor):
        rest = {k: v for k, v in batch.items() if k != "input_ids"}
        return model(inputs_embeds=embeds, **rest).logits

    @staticmethod
    def _mask(batch: dict, emb: torch.Tensor) -> torch.Tensor:
        mask = batch.get("attention_mask")
        if mask is None:
            return torch.ones_like(emb[..., :1])
        return mask.unsqueeze(-1).to(emb.dtype)  # (B, T, 1)

    def perturbation(self, model, batch, labels, task_loss, weights, grad) -> torch.Tensor:
        """delta (B, T, H) for `batch`, given the clean loss's gradient w.r.t. the embeddings."""
        mask = self._mask(batch, grad)
        if self.attack == "fgm":
            return (self.epsilon * ascent_direction(grad, mask, self.norm)).detach()
        base = self._embed(model, batch).detach()
        delta = project(
            self.step_size * ascent_direction(grad, mask, self.norm), self.epsilon, self.norm
        )
        for _ in range(self.steps - 1):
            delta = delta.detach().requires_grad_(True)
            loss = task_loss(self._forward(model, batch, base + delta), labels, weights)
            (g,) = torch.autograd.grad(loss, delta)  # w.r.t. delta only: weights' grads untouched
            step = self.step_size * ascent_direction(g, mask, self.norm)
            delta = project(delta.detach() + step, self.epsilon, self.norm)
        return delta.detach()

    # -- loop hooks --------------------------------------------------------------------------
    def loss(self, model, batch, labels, task_loss, weights, rows) -> torch.Tensor:
        emb = self._embed(model, batch)
        if emb.requires_grad:  # embeddings train (full): keep the graph into the matrix
            emb.retain_grad()
        else:  # frozen (freeze, LoRA): a leaf of its own, so it still gets a gradient
            emb = emb.detach().requires_grad_(True)
        self._emb = emb
        loss = task_loss(self._forward(model, batch, emb), labels, weights)
        self._sums["clean"] += float(loss.detach())
        return loss

    def after_backward(self, model, batch, labels, task_loss, weights, scale, backward) -> None:
        emb, self._emb = self._emb, None
        if emb is None or emb.grad is None or self.weight == 0:
            return
        delta = self.perturbation(model, batch, labels, task_loss, weights, emb.grad)
        embeds = self._embed(model, batch) + delta.to(emb.dtype)  # fresh graph into the matrix
        adv = task_loss(self._forward(model, batch, embeds), labels, weights)
        backward(adv * (self.weight * scale))
        self._sums["adversarial"] += float(adv.detach())
        self._sums["batches"] += 1

    def summary(self) -> dict:
        n = max(self._sums["batches"], 1)
        out = {
            "name": self.name,
            "attack": self.attack,
            "epsilon": self.epsilon,
            "norm": self.norm,
            "weight": self.weight,
        }
        if self.attack == "pgd":
            out.update(steps=self.steps, step_size=self.step_size)
        if self._sums["batches"]:  # mean over micro-batches: how much the attack raised the loss
            out["mean_clean_loss"] = round(self._sums["clean"] / n, 5)
            out["mean_adversarial_loss"] = round(self._sums["adversarial"] / n, 5)
        return out


def build(ctx: ProcedureContext) -> Adversarial:
    cfg = ctx.cfg
    if get_task(cfg.task).head_kind not in HEADS:
        names = [t.name for t in all_tasks() if t.head_kind in HEADS]
        raise ConfigError(
            "procedure.name",
            f"adversarial perturbs input embeddings of {' and '.join(names)} models; "
            f"task '{cfg.task}' is not supported (use procedure.name: standard)",
        )
    if getattr(ctx.model, "get_input_embeddings", lambda: None)() is None:
        raise ConfigError(
            "procedure.name", "adversarial needs a model with input embeddings (inputs_embeds)"
        )
    p = cfg.procedure
    return Adversarial(p.attack, p.epsilon, p.norm, p.steps, p.step_size, p.weight)
