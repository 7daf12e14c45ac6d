"""Load a run config from YAML plus `key.sub=value` overrides, with errors a person can fix."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tunelab.config.keys import Location, config_keys, locate, tag_of
from tunelab.config.schema import RunConfig
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


def _unknown_key(where: Location, path: str) -> str:
    """Why a key is not allowed here, with the closest key that is (from the schema)."""
    parent, key = where.parent, path.rpartition(".")[2]
    if where.union is not None and parent is not None:
        union, disc, tag, members = where.union
        others = [tag_of(m)[1] for m in members if m is not parent and key in m.model_fields]
        if others:
            word = union.rpartition(".")[2] if disc == "name" else disc
            own = [k for k in parent.model_fields if k != disc]
            return (
                f"not a setting of {word} '{tag}' (its settings: {', '.join(own) or 'none'}); "
                f"{key} is a setting of {', '.join(others)}"
            )
    near: list[str] = []
    if parent is not None:
        siblings = [k for k in parent.model_fields if not (where.union and k == where.union[1])]
        near = [
            path.rpartition(".")[0] + "." + k if "." in path else k
            for k in difflib.get_close_matches(key, siblings, n=1, cutoff=0.6)
        ]
    if not near:  # the key exists in another section: train.max_length -> data.max_length
        same = [k for k in config_keys() if k.name == key and not k.section]
        same = [k for k in same if not k.when] or same  # the unconditional ones first
        near = [f"{k.key} (with {k.when})" if k.when else k.key for k in same[:2]]
    if near:
        return f"unknown key; did you mean {' or '.join(near)}? (`tunelab train --help` lists the keys)"
    return "unknown key (check its spelling; `tunelab train --help` lists the keys)"


def format_validation_error(exc: ValidationError, prefix: str = "") -> ConfigError:
    """The first pydantic error as a ConfigError naming the dotted config path (under prefix).

    Union members are left out of the path (procedure.distill.alpha -> procedure.alpha,
    search.space.train.lr.float.low -> search.space.train.lr.low), as are pydantic's names
    for the branches of a plain union (method.train_layers.int -> method.train_layers)."""
    err = exc.errors()[0]
    head: list = [int(p) if p.isdigit() else p for p in prefix.split(".")] if prefix else []
    where = locate(head + list(err["loc"]))
    path = ".".join(where.shown)
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return ConfigError(path, _unknown_key(where, path))
    if kind == "missing":
        return ConfigError(path, "required key is missing")
    if kind in ("union_tag_invalid", "union_tag_not_found"):  # method.name / procedure.name
        disc = err["ctx"]["discriminator"].strip("'")
        path = f"{path}.{disc}" if path else disc
        if kind == "union_tag_not_found":
            return ConfigError(path, "required key is missing")
        tags = err["ctx"]["expected_tags"]
        return ConfigError(path, f"must be one of {tags}", err["ctx"]["tag"], has_value=True)
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
