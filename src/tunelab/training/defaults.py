"""The choices tunelab makes when the config leaves them open (`None`), and why.

Each function returns the value and a short reason; `resolve_defaults` records both in the
run's config.yaml and results.json so a user sees what was chosen. docs/defaults.md holds
the measurements behind the numbers.
"""

from __future__ import annotations

import math

# LoRA updates a low-rank slice and wants a larger step than full fine-tuning; training
# only the top layers sits between. Measured on SST-2 with MiniLM: bench/results/defaults.md.
# The rest follow their papers' and peft's examples (prompt tuning wants a large step),
# checked on the same SST-2 setup in bench/results/methods.md.
LR_BY_METHOD = {
    "full": 5e-5,
    "freeze": 2e-4,
    "lora": 1e-3,
    "dora": 1e-3,
    "qlora": 1e-3,
    "adapter": 1e-3,
    "ia3": 3e-3,
    "prefix": 1e-2,
    "prompt": 3e-2,
}
MIN_STEPS = 300  # small datasets get more epochs, so the head and adapters see enough updates


def choose_lr(method: str) -> tuple[float, str]:
    return LR_BY_METHOD[method], f"default for method '{method}'"


def choose_epochs(n_rows: int, batch_size: int, grad_accum: int) -> tuple[float, str]:
    """3 epochs, more for small data (>= ~300 optimizer steps, at most 15), fewer for large."""
    if n_rows > 100_000:
        return 1.0, f"{n_rows} training rows: one pass is plenty"
    if n_rows > 30_000:
        return 2.0, f"{n_rows} training rows"
    steps_per_epoch = math.ceil(math.ceil(n_rows / batch_size) / grad_accum)
    epochs = min(15, max(3, math.ceil(MIN_STEPS / steps_per_epoch)))
    return (
        float(epochs),
        f"{n_rows} training rows: {epochs} epochs give >= {min(MIN_STEPS, 15 * steps_per_epoch)} steps (early stopping guards against overfitting)",
    )
