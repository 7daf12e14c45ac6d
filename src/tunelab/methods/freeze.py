"""Frozen layers: the task head, the chosen transformer layers and what sits outside the
layer stacks (pooler, final norm) train; embeddings (unless `train_embeddings`) and the other
layers stay as pretrained.

`train_layers` picks the layers: an int k is the top k; a range string ("0-1,4") or a list
of indices (negative from the top, -1 is the last) names them exactly. An encoder-decoder has
two stacks (encoder and decoder); the choice applies to each.
"""

from __future__ import annotations

import torch

from tunelab.config.schema import MethodConfig
from tunelab.errors import ConfigError
from tunelab.methods.full import save  # noqa: F401  (a frozen model saves like a full one)


def layer_stacks(model) -> list[tuple[str, torch.nn.ModuleList]]:
    """The model's stacks of transformer blocks (BERT `layer`, Llama `layers`, T5 `block`):
    the longest ModuleLists, one per stack (encoder and decoder of a seq2seq model)."""
    lists = [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.ModuleList) and len(m) > 0 and isinstance(m[0], torch.nn.Module)
    ]
    # a stack holds blocks with parameters of their own, not e.g. a list of heads' biases
    lists = [(n, m) for n, m in lists if sum(1 for _ in m[0].parameters()) > 2]
    if not lists:
        raise ValueError(f"{type(model).__name__}: no list of transformer layers found to freeze")
    longest = max(len(m) for _, m in lists)
    return [(n, m) for n, m in lists if len(m) == longest]


def chosen_layers(spec: int | str | list[int], n: int) -> set[int]:
    """Layer indices (0 = lowest) of a stack of `n` that train."""
    if isinstance(spec, int):
        return set(range(max(0, n - spec), n))
    indices: list[int] = []
    if isinstance(spec, str):
        for part in spec.replace(" ", "").split(","):
            lo, sep, hi = part.partition("-")
            try:
                indices += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
            except ValueError:
                raise ConfigError(
                    "method.train_layers",
                    "expected an int, a range string like '0-1,4' or a list of indices",
                    spec,
                    has_value=True,
                ) from None
    else:
        indices = list(spec)
    out = set()
    for i in indices:
        if not -n <= i < n:
            raise ConfigError(
                "method.train_layers",
                f"layer {i} does not exist: the model has {n} layers (0-{n - 1})",
                spec,
                has_value=True,
            )
        out.add(i % n)
    return out


def apply(model, cfg: MethodConfig, task: str, head: list[str] | None = None):
    stacks = layer_stacks(model)
    train_prefixes = [
        f"{name}.{i}."
        for name, layers in stacks
        for i in chosen_layers(cfg.train_layers, len(layers))
    ]
    stack_prefixes = [f"{name}." for name, _ in stacks]
    embeddings = {id(p) for p in model.get_input_embeddings().parameters()}
    for name, p in model.named_parameters():
        if name.startswith(tuple(stack_prefixes)):
            train = name.startswith(tuple(train_prefixes))
        elif id(p) in embeddings or ".embeddings." in f".{name}" or "embed_" in name:
            train = cfg.train_embeddings
        else:  # the task head, pooler, final norms
            train = True
        p.requires_grad_(train)
    return model
