"""The one training loop, read top to bottom.

Per optimizer step: `grad_accum` micro-batches forward -> task loss -> backward, then clip,
step, schedule. Every `log_steps` a record goes to metrics.jsonl, TensorBoard and the run's
trackers (`settings.trackers`: MLflow, W&B); at each
evaluation point the `evaluate` callback scores the model, early stopping decides, the best
weights and a resumable checkpoint are written. Tasks give the loss; the caller gives the
evaluation (training never imports evaluation).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from tunelab.config.schema import TrainConfig
from tunelab.data.batching import Features, batch_order, collate
from tunelab.errors import Interrupted, TunelabError
from tunelab.training import checkpoint as ckpt
from tunelab.training.cpu_precision import cpu_precision
from tunelab.training.interrupt import GracefulInterrupt
from tunelab.training.loggers import MetricsLogger, RecordSink
from tunelab.training.optim import build_optimizer, build_scheduler
from tunelab.training.procedures import Procedure


@dataclass
class LoopSettings:
    lr: float
    epochs: float
    metric: str  # early-stopping / best-checkpoint metric on validation
    mode: str  # "max" | "min"
    pad_id: int
    class_weights: torch.Tensor | None = None
    collate: Callable = collate  # the task's own (e.g. masked-LM masking), else dynamic padding
    procedure: Procedure = field(default_factory=Procedure)  # how a batch's loss is formed
    batch_order: Callable = batch_order  # (lengths, batch_size, seed, epoch, group) -> batches
    on_eval: Callable[[int, dict], None] | None = None  # after each validation (search pruning)
    trackers: RecordSink | None = None  # MLflow/W&B (training.trackers); the caller closes them


@dataclass
class LoopResult:
    steps: int
    total_steps: int
    epochs: float
    train_samples: int
    train_seconds: float
    train_tokens: int = 0  # real (non-pad) tokens of the training batches
    stopped_early: bool = False
    best: dict | None = None  # {"step", "metric", "value"}
    evaluations: list[dict] = field(default_factory=list)

    @property
    def samples_per_s(self) -> float:
        return self.train_samples / self.train_seconds if self.train_seconds > 0 else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.train_tokens / self.train_seconds if self.train_seconds > 0 else 0.0


def _accelerator(cls, mixed: str):
    """A fresh Accelerator for this loop. AcceleratorState is a process-wide singleton that
    refuses another mixed_precision once set, so a second run in the same process (a search
    trial, a notebook) at another precision drops the stale state first; the process group
    (PartialState) is kept."""
    from accelerate.state import AcceleratorState

    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision") not in (None, mixed):
        AcceleratorState._reset_state(reset_partial_state=False)
    return cls(mixed_precision=mixed, cpu=not torch.cuda.is_available())


def _precision(cfg: TrainConfig) -> str:
    """Accelerate's mixed_precision for the run. `auto` on CPU: bf16 autocast (fp32 master
    weights and optimizer state) where this CPU measured it faster (cpu_precision), printed."""
    cuda = torch.cuda.is_available()
    if cfg.precision == "auto":
        if cuda:
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        verdict = cpu_precision()
        if verdict.bf16:
            print(f"default train.precision = bf16  (auto: bf16 autocast, {verdict.why})")
            return "bf16"
        print(f"default train.precision = fp32  (auto: {verdict.why})")
        return "no"
    if cfg.precision == "fp16" and not cuda:
        raise TunelabError(
            "train.precision: fp16 needs a CUDA GPU; use bf16 or fp32 on CPU, got 'fp16'"
        )
    return {"fp32": "no"}.get(cfg.precision, cfg.precision)


def _improved(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    if best is None:
        return True
    return value > best + min_delta if mode == "max" else value < best - min_delta


def train_loop(
    model,
    train: Features,
    cfg: TrainConfig,
    settings: LoopSettings,
    run_dir: Path,
    loss_fn: Callable,
    evaluate: Callable[[torch.nn.Module], dict] | None,
    resume: bool = False,
) -> LoopResult:
    """Train `model` in place; on return it holds the best weights seen (if evaluated)."""
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    accelerator = _accelerator(Accelerator, _precision(cfg))
    micro_per_epoch = math.ceil(len(train) / cfg.batch_size)
    steps_per_epoch = math.ceil(micro_per_epoch / cfg.grad_accum)
    total_steps = cfg.max_steps or max(1, math.ceil(settings.epochs * steps_per_epoch))
    eval_every = cfg.eval_steps or steps_per_epoch
    save_every = cfg.save_steps or eval_every
    optimizer = build_optimizer(model, cfg, settings.lr)
    scheduler = build_scheduler(optimizer, cfg, total_steps)
    ckpt_dir = run_dir / "checkpoints"

    # Loop position; restored from the newest checkpoint on resume.
    pos = {
        "step": 0,
        "epoch": 0,
        "micro": 0,
        "samples": 0,
        "tokens": 0,
        "seconds": 0.0,
        "best": None,
        "bad_evals": 0,
        "evaluations": [],
    }
    if resume:
        found = ckpt.list_checkpoints(ckpt_dir)
        if not found:
            raise TunelabError(f"{run_dir}: no checkpoint to resume from (checkpoints/ is empty)")
        pos = ckpt.load_checkpoint(found[-1], model, optimizer, scheduler)
        pos.setdefault("tokens", 0)  # checkpoints written before tokens were counted
        print(f"resuming from {found[-1].name} (step {pos['step']} of {total_steps})", flush=True)
    model, optimizer = accelerator.prepare(model, optimizer)
    procedure = settings.procedure
    procedure.setup(model, accelerator.device)
    weights = (
        settings.class_weights.to(accelerator.device)
        if settings.class_weights is not None
        else None
    )
    logger = MetricsLogger(
        run_dir,
        resume_step=pos["step"] if resume else None,
        tensorboard="tensorboard" in cfg.trackers,
        sink=settings.trackers,
    )
    bar = tqdm(
        total=total_steps,
        initial=pos["step"],
        desc="train",
        unit="step",
        dynamic_ncols=True,
        mininterval=0.5,
    )
    window: list[float] = []
    stop = pos["step"] >= total_steps

    def checkpoint() -> None:
        ckpt.save_checkpoint(
            ckpt_dir,
            pos["step"],
            accelerator.unwrap_model(model),
            optimizer,
            scheduler,
            pos,
            cfg.keep_checkpoints,
        )

    def run_eval() -> bool:
        """Evaluate, log, keep the best weights; True when early stopping says stop."""
        model.eval()
        scores = evaluate(accelerator.unwrap_model(model))
        model.train()
        epoch = pos["step"] / steps_per_epoch
        logger.log({"step": pos["step"], "epoch": round(epoch, 4), "split": "validation", **scores})
        pos["evaluations"].append(
            {
                "step": pos["step"],
                **{k: v for k, v in scores.items() if isinstance(v, (int, float))},
            }
        )
        value = scores.get(settings.metric)
        if value is None:
            raise TunelabError(
                f"train.early_stopping.metric: '{settings.metric}' is not a validation metric; have {sorted(scores)}"
            )
        es = cfg.early_stopping
        if _improved(value, pos["best"] and pos["best"]["value"], settings.mode, es.min_delta):
            pos["best"], pos["bad_evals"] = (
                {"step": pos["step"], "metric": settings.metric, "value": value},
                0,
            )
            ckpt.save_best(ckpt_dir, accelerator.unwrap_model(model), pos["best"])
        else:
            pos["bad_evals"] += 1
        if settings.on_eval is not None:
            settings.on_eval(pos["step"], scores)
        bar.write(
            f"step {pos['step']}: validation {settings.metric}={value:.4f} loss={scores.get('loss', float('nan')):.4f}"
        )
        return es.enabled and pos["bad_evals"] >= es.patience

    lengths = train.lengths  # (N,) real tokens per row; computed once, read every step
    model.train()
    with GracefulInterrupt() as interrupt:
        try:
            while not stop:
                epoch = pos["epoch"]
                batches = settings.batch_order(
                    lengths, cfg.batch_size, cfg.seed, epoch, cfg.group_by_length
                )
                while pos["epoch"] == epoch and not stop:
                    t0 = time.perf_counter()
                    group = batches[pos["micro"] : pos["micro"] + cfg.grad_accum]
                    n_rows = sum(len(b) for b in group)
                    pos["tokens"] += int(sum(lengths[b].sum() for b in group))
                    step_loss = 0.0
                    for index in group:
                        batch = {
                            k: v.to(accelerator.device)
                            for k, v in settings.collate(train, index, settings.pad_id).items()
                        }
                        labels = batch.pop("labels")
                        scale = len(index) / n_rows  # accumulation equals one big batch
                        with accelerator.autocast():
                            loss = procedure.loss(model, batch, labels, loss_fn, weights, index)
                        accelerator.backward(loss * scale)
                        with accelerator.autocast():
                            procedure.after_backward(
                                model, batch, labels, loss_fn, weights, scale, accelerator.backward
                            )
                        step_loss += loss.item() * scale
                    if not math.isfinite(step_loss):
                        raise TunelabError(
                            f"training diverged at step {pos['step'] + 1} (loss is {step_loss}); lower train.lr (now {settings.lr:g})"
                        )
                    if cfg.max_grad_norm:
                        accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    pos["step"] += 1
                    pos["micro"] += len(group)
                    pos["samples"] += n_rows
                    pos["seconds"] += time.perf_counter() - t0
                    window.append(step_loss)
                    rate = pos["samples"] / max(pos["seconds"], 1e-9)
                    bar.update(1)
                    bar.set_postfix(
                        loss=f"{step_loss:.4f}",
                        lr=f"{scheduler.get_last_lr()[0]:.2e}",
                        samples_s=f"{rate:.{0 if rate >= 10 else 2}f}",
                        tokens_s=f"{pos['tokens'] / max(pos['seconds'], 1e-9):.0f}",
                        refresh=False,
                    )
                    if pos["step"] % cfg.log_steps == 0 or pos["step"] == total_steps:
                        logger.log(
                            {
                                "step": pos["step"],
                                "epoch": round(pos["step"] / steps_per_epoch, 4),
                                "split": "train",
                                "loss": sum(window) / len(window),
                                "lr": scheduler.get_last_lr()[0],
                                "samples_per_s": rate,
                            }
                        )
                        window = []
                    if pos["micro"] >= len(
                        batches
                    ):  # epoch done: next one starts at its first batch
                        pos["epoch"], pos["micro"] = epoch + 1, 0
                    stop = pos["step"] >= total_steps
                    if evaluate is not None and (pos["step"] % eval_every == 0 or stop):
                        stop = run_eval() or stop
                    if pos["step"] % save_every == 0 or stop or interrupt.requested:
                        checkpoint()
                    if interrupt.requested and not stop:
                        raise Interrupted(
                            f"stopped at step {pos['step']} of {total_steps}; checkpoint written. "
                            f"Continue with: tunelab train CONFIG --resume"
                        )
        finally:
            bar.close()
            logger.close()

    model = accelerator.unwrap_model(model)
    if pos["best"] is not None and (ckpt_dir / "best" / "trainable.safetensors").is_file():
        ckpt.load_trainable(model, ckpt_dir / "best" / "trainable.safetensors")
    return LoopResult(
        steps=pos["step"],
        total_steps=total_steps,
        epochs=pos["step"] / steps_per_epoch,
        train_samples=pos["samples"],
        train_seconds=pos["seconds"],
        train_tokens=pos["tokens"],
        stopped_early=pos["step"] < total_steps,
        best=pos["best"],
        evaluations=pos["evaluations"],
    )
