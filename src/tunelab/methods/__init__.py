"""Adaptation methods: which parameters train, and how the adapted model is saved.

Each method is one module exposing `apply(model, cfg, task, head=None) -> model` and
`save(model, out_dir, cfg) -> list[Path]` (the folders it wrote). `METHODS` maps config
names to modules; adding a method touches nothing else.
"""

from __future__ import annotations

from types import ModuleType


def get_method(name: str) -> ModuleType:
    """The module implementing method `name` (imported lazily: peft is heavy)."""
    import importlib

    if name not in ("full", "freeze", "lora"):
        from tunelab.errors import ConfigError

        raise ConfigError("method.name", "unknown method", name, has_value=True)
    return importlib.import_module(f"tunelab.methods.{name}")
