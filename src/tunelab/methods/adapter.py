"""Bottleneck adapters (Houlsby et al. 2019; Pfeiffer et al. 2021): a small down-project ->
GELU -> up-project block with a residual, inserted on the output of each FFN (pfeiffer) or of
each attention block and each FFN (houlsby); the base stays frozen, the adapters and the task
head train. The up-projection starts at zero, so the adapted model starts as the base model.

The `adapters` library would be the maintained choice, but it pins transformers 4.x; this
module is the small part of it tunelab needs. Adapters sit behind a nonlinearity and cannot
be folded into the base: model/ holds `bottleneck_adapter.json` + `adapter.safetensors`
(adapters and head only) and loads with `load_trained` (the base comes from `base_model`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from tunelab.config.schema import MethodConfig
from tunelab.errors import ConfigError

CONFIG_FILE = "bottleneck_adapter.json"
WEIGHTS_FILE = "adapter.safetensors"
# Output projections of the attention block and of the FFN, by architecture family
# (BERT, Llama/Mistral, BART, T5, GPT-NeoX).
ATTENTION_OUT = ("attention.output.dense", "self_attn.o_proj", "self_attn.out_proj", "SelfAttention.o", "EncDecAttention.o", "encoder_attn.out_proj")  # fmt: skip
FFN_OUT = ("output.dense", "mlp.down_proj", "fc2", "DenseReluDense.wo", "dense_4h_to_h")


class Bottleneck(nn.Module):
    """x + up(gelu(down(x))): (..., H) -> (..., H)."""

    def __init__(self, hidden: int, size: int):
        super().__init__()
        self.down = nn.Linear(hidden, size)
        self.up = nn.Linear(size, hidden)
        nn.init.normal_(self.down.weight, std=0.01)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)  # starts as the identity
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(nn.functional.gelu(self.down(x)))


class WithAdapter(nn.Module):
    """A linear layer whose output passes through a bottleneck adapter."""

    def __init__(self, linear: nn.Linear, size: int):
        super().__init__()
        self.linear = linear
        self.adapter = Bottleneck(linear.out_features, size).to(linear.weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.linear(x))


def targets(model, placement: str) -> list[str]:
    """Names of the linear layers that get an adapter on their output."""
    found = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        is_attention = name.endswith(ATTENTION_OUT)
        is_ffn = name.endswith(FFN_OUT) and not is_attention
        if is_ffn or (placement == "houlsby" and is_attention):
            found.append(name)
    if not found:
        raise ConfigError(
            "method.name",
            f"adapter: no attention/FFN output projection found in {type(model).__name__} "
            f"(looked for names ending in {', '.join(FFN_OUT)}); use lora",
            "adapter",
            has_value=True,
        )
    return found


def insert(model, size: int, names: list[str]) -> None:
    """Wrap each named linear layer of `model` with an adapter, in place."""
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, WithAdapter(getattr(parent, child), size))


def apply(model, cfg: MethodConfig, task: str, head: list[str] | None = None):
    """Freeze the base, insert adapters, train adapters + the task head (+ `head` modules)."""
    names = targets(model, cfg.adapter_placement)
    head_params = _head_parameters(model, head)
    for p in model.parameters():
        p.requires_grad_(False)
    insert(model, cfg.adapter_size, names)
    for n, p in model.named_parameters():
        if ".adapter." in n or id(p) in head_params:
            p.requires_grad_(True)
    model.tunelab_adapter = {"size": cfg.adapter_size, "targets": names}
    return model


def _head_parameters(model, head: list[str] | None) -> set[int]:
    """The task head: the classifier/score layer, or the named head modules. A head tied to
    the input embeddings (a causal or masked LM's output layer) stays frozen."""
    modules = [model.get_submodule(h) for h in head or []]
    for name in ("classifier", "score"):
        if hasattr(model, name):
            modules.append(getattr(model, name))
    tied = {id(p) for p in model.get_input_embeddings().parameters()}
    return {id(p) for m in modules for p in m.parameters() if id(p) not in tied}


def save(model, out_dir: Path, cfg: MethodConfig) -> None:
    """What trained (adapters + head) and where the adapters sit."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {
        n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad
    }
    save_file(state, str(out_dir / WEIGHTS_FILE))
    info = dict(model.tunelab_adapter, placement=cfg.adapter_placement)
    (out_dir / CONFIG_FILE).write_text(json.dumps(info, indent=2))


def is_adapter_dir(path: Path) -> bool:
    return (Path(path) / CONFIG_FILE).is_file()


def load_into(base_model, model_dir: Path):
    """Insert the saved adapters into `base_model` (the base with the task's head) and load
    the trained weights; every saved tensor must find its place."""
    from safetensors.torch import load_file

    info = json.loads((Path(model_dir) / CONFIG_FILE).read_text())
    insert(base_model, info["size"], info["targets"])
    state = load_file(str(Path(model_dir) / WEIGHTS_FILE))
    missing = set(state) - set(dict(base_model.named_parameters()))
    if missing:
        raise ValueError(f"{model_dir}: saved weights do not fit the base: {sorted(missing)[:3]}")
    base_model.load_state_dict(state, strict=False)
    base_model.tunelab_adapter = {"size": info["size"], "targets": info["targets"]}
    return base_model
