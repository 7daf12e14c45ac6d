"""Adaptation methods: which parameters train, and how the adapted model is saved.

Each method is one module exposing `apply(model, cfg, task, head=None) -> model` and
`save(model, out_dir, cfg)`; methods whose update can live apart from the base also expose
`save_adapter(model, out_dir)` (the update alone, written to adapter/ when model/ is merged).
A method may expose `load_options(cfg) -> dict` (extra `from_pretrained` arguments, e.g.
4-bit loading) and `refusal(cfg, task, model_config) -> str | None` (why it cannot adapt
this model here; `fit.check` turns it into one ConfigError, before any weights load).
"""

from __future__ import annotations

from types import ModuleType

MODULES = {
    "full": "full",
    "freeze": "freeze",
    "lora": "lora",
    "dora": "lora",  # LoRA with weight decomposition: the same module, use_dora on
    "qlora": "qlora",
    "adapter": "adapter",
    "prefix": "prompt_learning",
    "prompt": "prompt_learning",
    "ia3": "ia3",
}


def get_method(name: str) -> ModuleType:
    """The module implementing method `name` (imported lazily: peft is heavy)."""
    import importlib

    if name not in MODULES:
        from tunelab.errors import ConfigError

        raise ConfigError("method.name", "unknown method", name, has_value=True)
    return importlib.import_module(f"tunelab.methods.{MODULES[name]}")
