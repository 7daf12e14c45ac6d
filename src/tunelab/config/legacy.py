"""Run configs that tunelab wrote before `method:` became one section per method (214faba).

Such a run's `config.yaml` (and `checkpoints/config.json`) holds every method's keys
(`method: {name: full, r: 16, adapter_size: 64, ...}`), which the method union refuses. When
tunelab reads back a run it wrote, `read_run_config` drops the keys that do not belong to the
chosen method *when they hold the old defaults* (the old file could not say more), with a note;
a key of another method set away from its default is kept, and validation then names it and
the file. A config a user writes is never upgraded: `load_config` stays strict.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tunelab.config.method import DEFAULT_METHOD, METHOD_CLASSES
from tunelab.errors import ConfigError

# the method keys and defaults of the one MethodConfig class before the union
OLD_METHOD_DEFAULTS: dict[str, Any] = {
    "train_layers": 2,
    "train_embeddings": False,
    "r": 16,
    "alpha": None,
    "dropout": 0.1,
    "rslora": False,
    "target_modules": None,
    "adapter_size": 64,
    "adapter_placement": "pfeiffer",
    "num_virtual_tokens": 20,
    "prompt_init": None,
    "merge": None,
}


def upgrade_method(raw: dict) -> list[str]:
    """Drop, in place from a run config's `method` mapping, the keys of other methods that
    hold their old defaults; return the dropped keys (none for a current config)."""
    method = raw.get("method")
    if not isinstance(method, dict):
        return []
    cls = METHOD_CLASSES.get(method.get("name", DEFAULT_METHOD))
    if cls is None:
        return []
    dropped = [
        key
        for key, value in method.items()
        if key not in cls.model_fields
        and key in OLD_METHOD_DEFAULTS
        and value == OLD_METHOD_DEFAULTS[key]
    ]
    for key in dropped:
        del method[key]
    return dropped


def note_upgrade(path: str | Path, dropped: list[str]) -> None:
    if dropped:
        print(
            f"note: {path} was written before methods had their own sections; read without "
            f"the other methods' default settings ({', '.join(f'method.{k}' for k in dropped)})",
            file=sys.stderr,
        )


def read_run_config(path: str | Path):
    """The RunConfig of a run's `config.yaml` (tunelab wrote it; see the module docstring).
    A file that does not validate is a ConfigError naming the file."""
    import yaml

    from tunelab.config.load import validate_config

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError("", f"{path}: cannot read the run's config ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError("", f"{path}: the top level must be a mapping of keys")
    note_upgrade(path, upgrade_method(raw))
    try:
        return validate_config(raw)
    except ConfigError as exc:
        named = ConfigError("", f"{path}: {exc}")
        named.path = exc.path  # the dotted key, as load_config's errors have it
        raise named from None
