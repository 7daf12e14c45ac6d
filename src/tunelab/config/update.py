"""`updated(cfg, **changes)`: a changed copy of a config section, validated.

pydantic's `model_copy(update=...)` skips validation (`cfg.model_copy(update={"task": "x"})`
passes), so a value set in code could break a rule the YAML path enforces. `updated` rebuilds
the section from what was set in it plus the changes and validates the result, raising the
ConfigError that loading the same config would.
"""

from __future__ import annotations

import typing
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from tunelab.config.method import METHOD_CLASSES, MethodConfig
from tunelab.config.procedure import PROCEDURE_CLASSES, Procedure
from tunelab.config.validation import format_validation_error
from tunelab.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def _is_tag(model: type[BaseModel], key: str) -> bool:
    """A union member's discriminator (`name: Literal["lora"]`, `type: Literal["int"]`)."""
    field = model.model_fields[key]
    return key in ("name", "type") and typing.get_origin(field.annotation) is typing.Literal


def explicit(value: Any) -> Any:
    """A section as the plain data it was built from: the keys set in it (defaults stay
    defaults, so changing a union member's `name` does not drag the old member's defaults
    along), plus each union member's discriminator."""
    if isinstance(value, BaseModel):
        cls = type(value)
        keep = value.model_fields_set | {k for k in cls.model_fields if _is_tag(cls, k)}
        return {k: explicit(getattr(value, k)) for k in cls.model_fields if k in keep}
    if isinstance(value, list):
        return [explicit(v) for v in value]
    if isinstance(value, dict):
        return {k: explicit(v) for k, v in value.items()}
    return value


def _set(raw: dict, key: str, value: Any, prefix: str, model: BaseModel) -> None:
    """Put `value` at dotted `key` of `raw`, the explicit data of `model` (a number indexes a
    list; a section left at its defaults is filled in from `model`, so it keeps its tag)."""
    node: Any = raw
    obj: Any = model  # what `node` was built from, while there is one
    parts = key.split(".")
    for i, part in enumerate(parts):
        here = ".".join(p for p in (prefix, *parts[: i + 1]) if p)
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(here, f"no such entry (the list has {len(node)})")
            if last:
                node[int(part)] = value
            else:
                node, obj = node[int(part)], obj[int(part)] if obj is not None else None
            continue
        if not part:
            raise ConfigError(here, "empty key in update")
        if last:
            node[part] = value
            continue
        sub = getattr(obj, part, None) if isinstance(obj, BaseModel) else None
        if not isinstance(node.get(part), (dict, list)):
            node[part] = explicit(sub) if isinstance(sub, BaseModel) else {}
        node, obj = node[part], sub


def _validator(model: BaseModel, changes: dict) -> tuple[Any, str]:
    """What validates the result, and where it sits in a run config: the class itself, or
    its union when a method or procedure changes its `name`."""
    cls = type(model)
    if cls in METHOD_CLASSES.values():
        return (TypeAdapter(MethodConfig) if "name" in changes else cls), "method"
    if cls in PROCEDURE_CLASSES.values():
        return (TypeAdapter(Procedure) if "name" in changes else cls), "procedure"
    return cls, ""


def updated(model: M, /, _at: str | None = None, **changes: Any) -> M:
    """A new, validated `model` with `changes`: `updated(cfg, output="runs/b")`,
    `updated(cfg, **{"data.max_length": 128, "procedure.tasks.0.weight": 2})`.

    A dotted key sets one value inside a section; a plain key replaces the whole value
    (a section given as a model or a dict is validated too). A method or procedure section
    may change its `name` (the result is then the other method's class). Raises ConfigError
    naming the dotted path, under `_at` (the section's place in the run config, e.g.
    "procedure.tasks.0.data"; default: none for a run config, "method"/"procedure" there).
    """
    validator, where = _validator(model, changes)
    prefix = where if _at is None else _at
    raw = explicit(model)
    for key, value in changes.items():
        _set(raw, key, explicit(value), prefix, model)
    try:
        if isinstance(validator, TypeAdapter):
            return validator.validate_python(raw)
        return validator.model_validate(raw)
    except ValidationError as exc:
        raise format_validation_error(exc, prefix) from None
