"""Render the config schema as the markdown table in docs/config.md.

`python -m tunelab.config.reference > docs/config.md`; a test keeps the file in step.
"""

from __future__ import annotations

import re
import types
import typing

from pydantic import BaseModel

from tunelab.config.schema import RunConfig


def _type(annotation) -> str:
    text = str(annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")
    text = re.sub(r"Annotated\[(.*), FieldInfo\(.*?\)\]", r"\1", text)  # search.space
    return re.sub(r"tunelab\.config\.\w+\.", "", text)


def _models(annotation) -> list[type[BaseModel]]:
    """The config sections an annotation holds: `X`, `X | None`, or a union of sections."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) is typing.Annotated:
        return _models(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(annotation) for m in _models(a)]
    return []


def _rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        sections = _models(ann)
        if len(sections) == 1:  # a section (or an optional one): its keys
            rows += _rows(sections[0], f"{prefix}{name}.")
            continue
        if len(sections) > 1:  # one of several sections, picked by its `name`
            for section in sections:
                tag = section.model_fields["name"].annotation.__args__[0]
                rows.append(
                    f"| **`{prefix}{name}` with `name: {tag}`** | | | {section.__doc__ or ''} |"
                )
                rows += [
                    r
                    for r in _rows(section, f"{prefix}{name}.")
                    if f"`{prefix}{name}.name`" not in r
                ]
            continue
        if field.is_required():
            default = "required"
        elif field.default_factory is not None:
            default = repr(field.default_factory())
        else:
            default = repr(field.default)
        cells = [f"`{prefix}{name}`", f"`{_type(ann)}`", f"`{default}`", field.description or ""]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return rows


def reference() -> str:
    head = [
        "# Config reference",
        "",
        "Generated from `tunelab.config.schema` by `python -m tunelab.config.reference`.",
        "`None` means tunelab chooses (docs/defaults.md). Unknown keys are errors.",
        "",
        "| key | type | default | meaning |",
        "| --- | --- | --- | --- |",
    ]
    return "\n".join(head + _rows(RunConfig)) + "\n"


if __name__ == "__main__":
    print(reference(), end="")
