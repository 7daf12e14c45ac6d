"""Load a run config from YAML plus `key.sub=value` overrides, with errors a person can fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tunelab.config.schema import RunConfig
from tunelab.config.validation import format_validation_error
from tunelab.errors import ConfigError


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`["train.lr=1e-4", "method.name=full"]` -> nested dict. Values are parsed as YAML."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(item, "override must look like key.sub=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(key, "empty key in override")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(key, "conflicting overrides")
        node[parts[-1]] = value
    return out


def merge_dicts(base: dict, extra: dict, prefix: str = "") -> dict:
    """`extra` over `base`, recursively for nested sections."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_dicts(merged[key], value, f"{prefix}{key}.")
        else:
            merged[key] = value
    return merged


def validate_config(raw: dict[str, Any]) -> RunConfig:
    """A RunConfig from plain data; ConfigError naming the dotted path of the first problem."""
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise format_validation_error(exc) from None


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Read YAML at `path` (or start empty), apply overrides, validate. Loads no weights."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError("", f"config file not found: {path}")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark else ""
            raise ConfigError(
                "", f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}"
            ) from None
        except UnicodeDecodeError:
            raise ConfigError("", f"{path}: not UTF-8 text") from None
        if not isinstance(raw, dict):
            raise ConfigError("", f"{path}: the top level must be a mapping of keys")
    raw = merge_dicts(raw, parse_overrides(overrides or []))
    return validate_config(raw)
