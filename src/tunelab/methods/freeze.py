"""Frozen layers: train the task head, the top `train_layers` transformer layers, and what
sits above them (pooler, final norm); embeddings and lower layers stay as pretrained."""

from __future__ import annotations

import torch

from tunelab.config.schema import MethodConfig
from tunelab.methods.full import save  # noqa: F401  (a frozen model saves like a full one)


def find_layers(model) -> tuple[str, torch.nn.ModuleList]:
    """The longest ModuleList of transformer blocks in the model (BERT `layer`, Llama `layers`)."""
    best: tuple[str, torch.nn.ModuleList] | None = None
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) > 0:
            if best is None or len(module) > len(best[1]):
                best = (name, module)
    if best is None:
        raise ValueError(f"{type(model).__name__}: no list of transformer layers found to freeze")
    return best


def apply(model, cfg: MethodConfig, task: str = "classification", head: list[str] | None = None):
    layers_name, layers = find_layers(model)
    k = min(cfg.train_layers, len(layers))
    top = {f"{layers_name}.{i}." for i in range(len(layers) - k, len(layers))}
    base_prefix = getattr(model, "base_model_prefix", "")
    embeddings = {id(p) for p in model.get_input_embeddings().parameters()}
    for name, p in model.named_parameters():
        in_base = bool(base_prefix) and name.startswith(base_prefix + ".")
        in_layers = name.startswith(layers_name + ".")
        is_embedding = id(p) in embeddings or ".embeddings." in f".{name}"
        if not in_base:  # the task head
            train = True
        elif in_layers:
            train = any(name.startswith(t) for t in top)
        else:  # pooler / final norm above the layers train; embeddings do not
            train = not is_embedding
        p.requires_grad_(train)
    return model
