"""Multi-task learning: one shared encoder, one head per task, every micro-batch from one task.

- The model: each task's own Hugging Face model (e.g. BertForSequenceClassification,
  BertForTokenClassification), all pointing at the *same* encoder modules (`share_encoder`),
  held in a `MultitaskModel`. Each task model stays a plain HF model, so it saves and loads
  like a single-task one.
- The data: `MultitaskFeatures` puts the tasks' training rows one after the other (global
  row ids); `make_batch_order` builds each task's length-grouped batches and then picks, per
  slot, which task the next batch comes from (size: p ~ n_i; temperature: p ~ n_i^(1/T);
  round_robin: in turn), deterministic in (seed, epoch) so resuming stays exact.
- The loss: `collate` adds the batch's task id; `MultitaskLoss.loss` runs that task's model
  and its task loss, times the task's weight.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from tunelab.data.batching import Features, batch_order
from tunelab.training.procedures import Procedure, ProcedureContext


class MultitaskModel(torch.nn.Module):
    """Task models that share their encoder; `forward(task, **inputs)` runs one of them."""

    def __init__(self, models: dict[str, torch.nn.Module]):
        super().__init__()
        self.tasks = torch.nn.ModuleDict(models)

    def forward(self, task: str, **inputs):
        return self.tasks[task](**inputs)


def _base(model) -> torch.nn.Module:
    return getattr(model, model.base_model_prefix)


def share_encoder(models: dict[str, torch.nn.Module]) -> str:
    """Point every model's encoder parts at one model's (the anchor's) and return its name.

    The anchor is the model whose base has the most parts (a sequence classifier's BERT has a
    pooler, a token classifier's does not). Parts both have (embeddings, encoder layers, and
    the pooler between classifiers) become the same modules; the heads stay per task."""
    anchor = max(models, key=lambda n: len(list(_base(models[n]).named_children())))
    shared = _base(models[anchor])
    for name, model in models.items():
        if name == anchor:
            continue
        base = _base(model)
        for part, module in list(base.named_children()):
            mine = getattr(shared, part, None)
            if isinstance(mine, torch.nn.Module) and type(mine) is type(module):
                setattr(base, part, mine)
    return anchor


def apply_method(models: dict, anchor: str, method, method_cfg, task_names: dict, heads: dict):
    """Adapt the shared encoder once, through the anchor's model (full, freeze, LoRA...); the
    parameters the anchor does not hold (the other tasks' heads) train fully."""
    anchor_ids = {id(p) for p in models[anchor].parameters()}
    models[anchor] = method.apply(
        models[anchor], method_cfg, task_names[anchor], head=heads.get(anchor)
    )
    for name, model in models.items():
        if name != anchor:
            for p in model.parameters():
                if id(p) not in anchor_ids:
                    p.requires_grad_(True)


class MultitaskFeatures:
    """The tasks' training features one after the other: global row i of task t is local row
    i - offsets[t]. `lengths` is what the loop reads (real tokens per row)."""

    def __init__(self, names: list[str], parts: list[Features], collates: list[Callable]):
        self.names, self.parts, self.collates = names, parts, collates
        self.offsets = np.cumsum([0] + [len(p) for p in parts])
        self.lengths = np.concatenate([p.lengths for p in parts])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def task_of(self, row: int) -> int:
        return int(np.searchsorted(self.offsets, row, side="right") - 1)


def multitask_collate(features: MultitaskFeatures, index: np.ndarray, pad_id: int) -> dict:
    """The task's own batch of global rows `index` (all from one task) plus `task`: its id."""
    t = features.task_of(int(index[0]))
    batch = features.collates[t](features.parts[t], index - features.offsets[t], pad_id)
    batch["task"] = torch.tensor(t)
    return batch


def sampling_probabilities(sizes: list[int], sampling: str, temperature: float) -> np.ndarray:
    """Share of batches each task gets: size p ~ n, temperature p ~ n^(1/T), round_robin 1/k."""
    sizes = np.asarray(sizes, dtype=np.float64)
    if sampling == "round_robin":
        return np.full(len(sizes), 1.0 / len(sizes))
    w = sizes ** (1.0 / (1.0 if sampling == "size" else temperature))
    return w / w.sum()


def task_sequence(n: int, probs: np.ndarray, sampling: str, seed: int, epoch: int) -> np.ndarray:
    """Which task each of an epoch's `n` batches comes from."""
    if sampling == "round_robin":
        return np.arange(n) % len(probs)
    return np.random.default_rng([seed, epoch, 17]).choice(len(probs), size=n, p=probs)


def make_batch_order(features: MultitaskFeatures, sampling: str, temperature: float) -> Callable:
    """A `batch_order` for the loop: as many batches per epoch as the tasks have together,
    each task's drawn in its own length-grouped order (reshuffled when used up)."""
    sizes = [len(p) for p in features.parts]
    probs = sampling_probabilities(sizes, sampling, temperature)
    offsets = features.offsets

    def order(lengths, batch_size: int, seed: int, epoch: int, group: bool = True) -> list:
        pools: list[list] = [[] for _ in sizes]
        refills = [0] * len(sizes)

        def take(t: int) -> np.ndarray:
            if not pools[t]:
                lo, hi = offsets[t], offsets[t + 1]
                pools[t] = [
                    b + lo
                    for b in batch_order(
                        lengths[lo:hi],
                        batch_size,
                        seed + 100_003 * t,
                        1000 * epoch + refills[t],
                        group,
                    )
                ][::-1]
                refills[t] += 1
            return pools[t].pop()

        n = sum(-(-s // batch_size) for s in sizes)
        return [take(int(t)) for t in task_sequence(n, probs, sampling, seed, epoch)]

    return order


class MultitaskLoss(Procedure):
    """Routes each batch to its task's model and loss (times the task's weight)."""

    name = "multitask"

    def __init__(self, names, losses, weights, class_weights, settings: dict):
        self.names, self.losses, self.weights = names, losses, weights
        self.class_weights = class_weights
        self.settings = settings
        self.history: list[list[float]] = [[] for _ in names]

    def setup(self, model, device) -> None:
        self.class_weights = [None if w is None else w.to(device) for w in self.class_weights]

    def loss(self, model, batch: dict, labels, task_loss, weights, rows) -> torch.Tensor:
        t = int(batch["task"])
        inputs = {k: v for k, v in batch.items() if k != "task"}
        logits = model(self.names[t], **inputs).logits
        loss = self.losses[t](logits, labels, self.class_weights[t])
        self.history[t].append(float(loss.detach()))
        return self.weights[t] * loss

    def summary(self) -> dict:
        def mean(xs: list[float]) -> float | None:
            return round(sum(xs) / len(xs), 4) if xs else None

        tasks = {}
        for name, hist, w, extra in zip(
            self.names, self.history, self.weights, self.settings["tasks"], strict=True
        ):
            k = max(1, min(10, len(hist) // 4))
            tasks[name] = {
                **extra,
                "weight": w,
                "batches": len(hist),
                "train_loss_first": mean(hist[:k]),
                "train_loss_last": mean(hist[-k:]),
            }
        return {
            "name": "multitask",
            "sampling": self.settings["sampling"],
            "temperature": self.settings["temperature"],
            "tasks": tasks,
        }


def build(ctx: ProcedureContext) -> MultitaskLoss:
    """`ctx.task` and `ctx.data` map task names to task modules and loaded data; `ctx.feats`
    is the MultitaskFeatures of the training rows."""
    proc = ctx.cfg.procedure
    names = [e.name for e in proc.tasks]
    probs = sampling_probabilities(
        [len(p) for p in ctx.feats.parts], proc.sampling, proc.temperature
    )
    class_weights = []
    for e in proc.tasks:
        data, task = ctx.data[e.name], ctx.task[e.name]
        w = task.class_weights(data.splits["train"].y, data.labels, ctx.cfg.train.class_weights)
        class_weights.append(None if w is None else torch.as_tensor(w))
    settings = {
        "sampling": proc.sampling,
        "temperature": proc.temperature if proc.sampling == "temperature" else None,
        "tasks": [
            {"task": e.task, "train_rows": len(part), "p": round(float(p), 4)}
            for e, part, p in zip(proc.tasks, ctx.feats.parts, probs, strict=True)
        ],
    }
    return MultitaskLoss(
        names,
        [ctx.task[n].loss for n in names],
        [e.weight for e in proc.tasks],
        class_weights,
        settings,
    )
