"""AdamW with decoupled weight decay (not on biases and norms) and a warmup schedule."""

from __future__ import annotations

import math

import torch

from tunelab.config.schema import TrainConfig


def build_optimizer(model, cfg: TrainConfig, lr: float) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    if not decay and not no_decay:
        raise ValueError("no trainable parameters: check method settings")
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    params = decay + no_decay
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, **_kernel(params))


def _kernel(params: list[torch.Tensor]) -> dict:
    """`fused=True` on a CPU run whose trainable parameters are all plain floating tensors on
    the CPU: the fused kernel steps AdamW 3.5-7x faster there than torch's CPU default, a
    per-tensor loop (bench/results/cpu_kernels.md). On a GPU, torch's default (foreach) stays."""
    if torch.cuda.is_available():
        return {}
    fusable = all(
        type(p) in (torch.Tensor, torch.nn.Parameter)
        and p.device.type == "cpu"
        and p.dtype in (torch.float32, torch.float64, torch.bfloat16, torch.float16)
        for p in params
    )
    return {"fused": True} if fusable else {}


def build_scheduler(optimizer, cfg: TrainConfig, total_steps: int):
    """Linear warmup over `warmup_ratio` of the steps, then linear/cosine decay or constant."""
    warmup = int(math.ceil(cfg.warmup_ratio * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if cfg.scheduler == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total_steps - warmup)
        if cfg.scheduler == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        return max(0.0, 1.0 - progress)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
