"""Compact input embeddings from the served model itself, for the prediction log and drift.

Every model's vector is projected to EMBED_DIM numbers by a fixed Gaussian matrix (seeded by
the hidden size), so the log stays small (128 bytes a row as float16) and the reference and
the served traffic land in the same space by construction. Encoders (classifiers) use the
mean-pooled last hidden state of the very forward pass that predicts; other models (taggers,
question answerers, causal LMs' prompts) the mean of the model's input-embedding rows of the
input's tokens, which costs no forward pass at all.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

EMBED_DIM = 64


@lru_cache(maxsize=8)
def _projection(hidden: int) -> np.ndarray:
    # (H, EMBED_DIM); Johnson-Lindenstrauss: distances survive up to a small factor
    rng = np.random.default_rng(hidden)
    return (rng.standard_normal((hidden, EMBED_DIM)) / np.sqrt(EMBED_DIM)).astype(np.float32)


def project(pooled: np.ndarray) -> np.ndarray:
    """(N, H) -> (N, EMBED_DIM) float32, the same matrix for every model of hidden size H."""
    pooled = np.asarray(pooled, dtype=np.float32)
    return pooled @ _projection(pooled.shape[-1])


def mean_pool(hidden, mask):
    """(B, T, H) hidden states, (B, T) attention mask -> (B, H): the mean over real tokens."""
    m = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1)


def embed_token_ids(model, ids_list: list[list[int]]) -> np.ndarray:
    """(N, EMBED_DIM): the mean input-embedding row of each input's tokens (no forward pass)."""
    import torch

    table = model.get_input_embeddings().weight  # (V, H)
    out = np.zeros((len(ids_list), table.shape[1]), dtype=np.float32)
    with torch.inference_mode():
        for i, ids in enumerate(ids_list):
            if ids:
                index = torch.as_tensor(ids, device=table.device)
                out[i] = table.index_select(0, index).float().mean(0).cpu().numpy()
    return project(out)


def unk_counts(tokenizer, ids_list: list[list[int]]) -> list[int]:
    """How many of each input's tokens are the tokenizer's unknown token (0 without one)."""
    unk = tokenizer.unk_token_id
    if unk is None:
        return [0] * len(ids_list)
    return [sum(1 for t in ids if t == unk) for ids in ids_list]
