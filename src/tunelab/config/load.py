"""Load a run config from YAML plus `key.sub=value` overrides, with errors a person can fix."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tunelab.config.procedure import PROCEDURES
from tunelab.config.schema import RunConfig
from tunelab.config.search import PARAM_TYPES
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


def format_validation_error(exc: ValidationError, prefix: str = "") -> ConfigError:
    """The first pydantic error as a ConfigError naming the dotted config path (under prefix)."""
    err = exc.errors()[0]
    loc = list(err["loc"])
    if len(loc) > 1 and loc[0] == "procedure" and loc[1] in PROCEDURES:
        loc.pop(1)  # pydantic names the union member: procedure.distill.alpha -> procedure.alpha
    if len(loc) > 3 and loc[:2] == ["search", "space"] and loc[3] in PARAM_TYPES:
        loc.pop(3)  # search.space.train.lr.float.low -> search.space.train.lr.low
    path = ".".join(str(p) for p in ([prefix] if prefix else []) + loc)
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return ConfigError(
            path, "unknown key (check its spelling; `tunelab train --help` lists the keys)"
        )
    if kind == "missing":
        return ConfigError(path, "required key is missing")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
        # a section's check names its key first ("merge: ..."): fold it into the path
        key, sep, rest = msg.partition(": ")
        if sep and re.fullmatch(r"[a-z_][a-z0-9_.]*", key) and not path.endswith(key):
            path, msg = f"{path}.{key}" if path else key, rest
    msg = msg[0].lower() + msg[1:]
    if kind == "greater_than":
        msg = f"must be > {err['ctx']['gt']:g}"
    elif kind == "greater_than_equal":
        msg = f"must be >= {err['ctx']['ge']:g}"
    return ConfigError(
        path, msg, err.get("input"), has_value="input" in err and kind != "value_error"
    )


def validate_config(raw: dict[str, Any]) -> RunConfig:
    try:
        cfg = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise format_validation_error(exc) from None
    if cfg.procedure.name == "multitask":  # each task's data: is a DataConfig of its own
        from tunelab.config.multitask import task_data_configs

        task_data_configs(cfg)
    return cfg


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
