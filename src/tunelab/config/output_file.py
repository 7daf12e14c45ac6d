"""Read and write the JSON files a run leaves behind (results.json, a model's tunelab.json)
through their pydantic models, with one schema-version rule for both.

The rule: a file carries `schema_version` (the model's SCHEMA_VERSION when tunelab wrote it).
A file without it is version 0, the shape written before the field existed; it has the same
fields and loads. A file with a higher version than this tunelab knows is refused with an
error that says to upgrade tunelab. A field of the wrong type is an error naming the file and
the field (dotted: `run.steps`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tunelab.atomic import atomic_write_text
from tunelab.errors import OutputFileError

M = TypeVar("M", bound=BaseModel)


def read_output(path: Path, model: type[M], version: int) -> M:
    """`path` validated as `model`; errors name the file (and the field)."""
    path = Path(path)
    if not path.is_file():
        raise OutputFileError(path, "no such file")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OutputFileError(path, f"not readable JSON ({exc})") from None
    return validate_output(raw, model, version, path)


def validate_output(raw: Any, model: type[M], version: int, where: str | Path) -> M:
    """`raw` (the parsed JSON of `where`) as `model`, after the schema-version rule."""
    if not isinstance(raw, dict):
        raise OutputFileError(where, f"must hold a JSON object, got {type(raw).__name__}")
    found = raw.get("schema_version", 0)
    if not isinstance(found, int) or isinstance(found, bool) or found < 0:
        raise OutputFileError(
            where, f"must be a whole number >= 0, got {found!r}", field="schema_version"
        )
    if found > version:
        raise OutputFileError(
            where,
            f"schema_version {found} is newer than this tunelab reads (up to {version}); "
            "upgrade tunelab (pip install -U tunelab) to read it",
            field="schema_version",
        )
    try:
        return model.model_validate({**raw, "schema_version": found})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or None
        got = f", got {err['input']!r}" if err["type"] != "missing" else ""
        raise OutputFileError(where, f"{err['msg']}{got}", field=field) from None


def output_dict(obj: BaseModel, version: int) -> dict[str, Any]:
    """The JSON form written to disk: schema_version first (always this tunelab's), then the
    fields that were set (a field left at its default stays out, as before the models)."""
    data = obj.model_dump(mode="json", exclude_unset=True)
    data.pop("schema_version", None)
    return {"schema_version": version, **data}


def write_output(path: Path, obj: BaseModel, version: int) -> dict[str, Any]:
    """Write `obj` to `path` atomically; returns what was written."""
    data = output_dict(obj, version)
    atomic_write_text(Path(path), json.dumps(data, indent=2, default=str) + "\n")
    return data
