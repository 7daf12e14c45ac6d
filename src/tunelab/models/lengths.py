"""How many tokens a model takes, and how long to make a run's sequences from its data.

Both sit below tasks and training: a task's own `choose_max_length` (seq2seq) and the run's
default (runs/train.py) use them, and neither may import training.
"""

from __future__ import annotations

import numpy as np


def choose_max_length(lengths: np.ndarray, model_max: int) -> tuple[int, str]:
    """The 99th percentile of training lengths, rounded up to a multiple of 8, capped by the model."""
    p99 = int(np.percentile(lengths, 99)) if len(lengths) else model_max
    chosen = min(model_max, max(16, -(-p99 // 8) * 8))
    truncated = float((lengths > chosen).mean()) if len(lengths) else 0.0
    return (
        chosen,
        f"99th percentile of training lengths is {p99} tokens; {truncated:.1%} of rows truncated",
    )


def model_max_length(tokenizer, config) -> int:
    limits = [
        getattr(config, "max_position_embeddings", None),
        getattr(tokenizer, "model_max_length", None),
    ]
    limits = [x for x in limits if isinstance(x, int) and 0 < x < 1_000_000]
    return min(limits + [512]) if limits else 512
