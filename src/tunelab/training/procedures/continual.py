"""Continual learning: train on new data without forgetting what the starting model knew.

The starting model (`model:`, often a tunelab run dir) already learned an earlier task with
the same label space. Two remedies, usable together:

- replay (data level): rows of the earlier training file are mixed into the training split
  before featurizing, so that `replay_ratio` of the training rows come from it
  (`with_replay`, called by the run before any weights load);
- a penalty toward the starting weights theta0, added to every batch's loss:
  `l2`:  weight * sum((theta - theta0)^2) over the trainable parameters;
  `ewc`: weight * sum(F * (theta - theta0)^2), F the diagonal Fisher of the starting model
  on `fisher_rows` replay rows (mean of squared per-row gradients of the log-likelihood),
  scaled to mean 1 so that a weight means the same for ewc as for l2 on an average parameter.

theta0 and F are taken in `build`, on the weights the run starts from (before a resumed
checkpoint is loaded), so a resumed run pulls toward the same point.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from tunelab.errors import DataError
from tunelab.training.procedures import Procedure, ProcedureContext


def read_earlier(task, cfg, labels, path: str, name: str):
    """One file of the earlier task read as the task reads its own splits, its labels encoded
    in the run's label space (an unknown label is a DataError naming file, row and column)."""
    from tunelab.data import read_table, require_columns

    if task.read_split is None:
        raise DataError(path, f"procedure.{name}: task {cfg.task} cannot read extra files")
    df = read_table(path)
    if task.head_kind == "sequence":  # text (and pair) -> label rows
        d = cfg.data
        require_columns(df, str(path), [c for c in (d.text, d.text_pair, d.label) if c])
    return task.read_split(name, df, cfg.data, labels)


def _take(split, index: np.ndarray):
    """The rows `index` of a split (lists and arrays of per-row values are indexed)."""
    n = len(split)
    out = {}
    for f in dataclasses.fields(split):
        v = getattr(split, f.name)
        if isinstance(v, np.ndarray) and len(v) == n:
            v = v[index]
        elif isinstance(v, list) and len(v) == n:
            v = [v[i] for i in index]
        out[f.name] = v
    return dataclasses.replace(split, **out)


def _concat(new, old):
    """`new` followed by `old`: per-row lists and arrays joined, the rest kept from `new`."""
    n, m = len(new), len(old)
    out = {}
    for f in dataclasses.fields(new):
        a, b = getattr(new, f.name), getattr(old, f.name)
        if isinstance(a, np.ndarray) and len(a) == n:
            a = np.concatenate([a, b.astype(a.dtype)])
        elif isinstance(a, list) and len(a) == n:
            if not isinstance(b, list) or len(b) != m:
                raise DataError(
                    old.file, f"replay rows lack '{f.name}' that the training rows have"
                )
            a = a + b
        elif a is None and isinstance(b, list) and len(b) == m:
            raise DataError(old.file, f"replay rows have '{f.name}' that the training rows lack")
        out[f.name] = a
    return dataclasses.replace(new, **out)


def replay_count(n_new: int, ratio: float) -> int:
    """Replay rows to add to `n_new` new rows so that they make up `ratio` of the total."""
    return int(round(ratio * n_new / (1 - ratio)))


def with_replay(cfg, task, data):
    """`data` with the training split extended by a seeded sample of `procedure.replay`
    (rows repeated when the file has fewer than needed). The data is unchanged when the
    procedure is not continual or has no replay file. Records what it did in data.replay."""
    p = cfg.procedure
    if p.name != "continual" or not p.replay or p.replay_ratio == 0:
        return data
    old = read_earlier(task, cfg, data.labels, p.replay, "replay")
    if len(old) == 0:
        raise DataError(p.replay, "procedure.replay: the file has no rows")
    train = data.splits["train"]
    k = replay_count(len(train), p.replay_ratio)
    rng = np.random.default_rng(cfg.train.seed)
    reps = -(-k // len(old))
    index = np.concatenate([rng.permutation(len(old)) for _ in range(reps)])[:k]
    merged = _concat(train, _take(old, index))
    info = {
        "file": str(p.replay),
        "rows": k,
        "of_train": len(merged),
        "share": round(k / max(len(merged), 1), 4),
        "file_rows": len(old),
        "repeated": k > len(old),
    }
    print(
        f"replay: {k} of {len(merged)} training rows ({info['share']:.0%}) from {p.replay}"
        + (f" (its {len(old)} rows repeated)" if info["repeated"] else "")
    )
    out = dataclasses.replace(data, splits={**data.splits, "train": merged})
    out.replay = info  # read back by the procedure's summary
    return out


def _predicted(head_kind: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The model's own labels in place of the true ones (heads with classes only)."""
    if head_kind == "sequence":
        if labels.dim() == 2:  # multi-label: multi-hot of logit > 0
            return (logits > 0).to(labels.dtype)
        return logits.argmax(-1)
    if head_kind == "token":
        return torch.where(labels == -100, labels, logits.argmax(-1))
    return labels  # language-model tasks: the empirical Fisher


def fisher_diagonal(model, params, feats, collate, pad_id, task_loss, head_kind, labels_from):
    """Mean over rows of the squared gradient of the row's log-likelihood, per parameter
    element (per-row gradients: the Fisher is a mean of squares, not a square of means)."""
    fisher = [torch.zeros_like(p) for p in params]
    was_training = model.training
    model.eval()  # no dropout: the Fisher of the model as it predicts
    device = params[0].device
    try:
        for i in range(len(feats)):
            batch = {k: v.to(device) for k, v in collate(feats, np.array([i]), pad_id).items()}
            labels = batch.pop("labels")
            logits = model(**batch).logits
            if labels_from == "predicted":
                labels = _predicted(head_kind, logits.detach(), labels)
            nll = task_loss(logits, labels)  # -log p(label | row), mean over the row's tokens
            grads = torch.autograd.grad(nll, params, allow_unused=True)
            for f, g in zip(fisher, grads):
                if g is not None:
                    f += g.detach().float() ** 2
    finally:
        model.train(was_training)
    return [f / max(len(feats), 1) for f in fisher]


class ContinualProcedure(Procedure):
    name = "continual"

    def __init__(self, settings, params, theta0, fisher, replay: dict | None):
        self.settings = settings
        self.params = params  # the trainable Parameters (moved in place with the model)
        self.theta0 = theta0
        self.fisher = fisher  # None for l2 / none
        self.replay = replay
        self.first_penalty: float | None = None
        self.last_penalty: float | None = None

    def setup(self, model, device) -> None:
        self.theta0 = [t.to(device) for t in self.theta0]
        if self.fisher is not None:
            self.fisher = [f.to(device) for f in self.fisher]

    def penalty(self) -> torch.Tensor:
        """sum((theta - theta0)^2), Fisher-weighted for ewc (without penalty_weight)."""
        total = torch.zeros((), device=self.params[0].device)
        for i, (p, p0) in enumerate(zip(self.params, self.theta0)):
            d = (p.float() - p0) ** 2
            total = total + (d * self.fisher[i] if self.fisher is not None else d).sum()
        return total

    def loss(self, model, batch, labels, task_loss, weights, rows) -> torch.Tensor:
        loss = super().loss(model, batch, labels, task_loss, weights, rows)
        if self.settings.penalty == "none" or not self.params:
            return loss
        pen = self.penalty()
        value = float(pen.detach())
        if self.first_penalty is None:
            self.first_penalty = value
        self.last_penalty = value
        return loss + self.settings.penalty_weight * pen

    def summary(self) -> dict:
        s = self.settings
        out = {
            "name": self.name,
            "penalty": s.penalty,
            "penalty_weight": s.penalty_weight,
            "replay": self.replay,
            "replay_ratio": s.replay_ratio if self.replay else 0.0,
        }
        if s.penalty != "none":
            out["penalty_first"] = self.first_penalty
            out["penalty_last"] = self.last_penalty
        if s.penalty == "ewc":
            out["fisher_rows"] = s.fisher_rows
            out["fisher_labels"] = s.fisher_labels
        return out


def build(ctx: ProcedureContext) -> ContinualProcedure:
    s = ctx.cfg.procedure
    model = ctx.model
    # a copy of the starting weights only when a penalty pulls toward them
    params = [p for p in model.parameters() if p.requires_grad] if s.penalty != "none" else []
    theta0 = [p.detach().float().clone() for p in params]
    fisher = None
    if s.penalty == "ewc":
        from tunelab.data.batching import collate as default_collate

        old = read_earlier(ctx.task, ctx.cfg, ctx.data.labels, s.replay, "replay")
        rows = np.random.default_rng(ctx.cfg.train.seed).permutation(len(old))[: s.fisher_rows]
        feats = ctx.task.featurize(_take(old, rows), ctx.tokenizer, ctx.cfg.data.max_length)
        collate = getattr(ctx.task, "collate", default_collate)
        pad_id = ctx.tokenizer.pad_token_id
        print(f"ewc: Fisher of the starting model on {len(rows)} rows of {s.replay}")
        raw = fisher_diagonal(
            model,
            params,
            feats,
            collate,
            pad_id,
            ctx.task.loss,
            ctx.task.head_kind,
            s.fisher_labels,
        )
        mean = torch.cat([f.flatten() for f in raw]).mean() if raw else torch.tensor(0.0)
        fisher = [f / mean for f in raw] if mean > 0 else raw
    return ContinualProcedure(s, params, theta0, fisher, getattr(ctx.data, "replay", None))
