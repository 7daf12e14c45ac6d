"""Render the config schema as the markdown table in docs/config.md.

`python -m tunelab.config.reference > docs/config.md`; a test keeps the file in step.
"""

from __future__ import annotations

from pydantic import BaseModel

from tunelab.config.keys import default_text, tag_of
from tunelab.config.keys import section_models as _models  # noqa: F401  (tunelab.search)
from tunelab.config.keys import type_name as _type
from tunelab.config.schema import RunConfig


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
                tag = tag_of(section)[1]
                rows.append(
                    f"| **`{prefix}{name}` with `name: {tag}`** | | | {section.__doc__ or ''} |"
                )
                rows += [
                    r
                    for r in _rows(section, f"{prefix}{name}.")
                    if f"`{prefix}{name}.name`" not in r
                ]
            continue
        default = default_text(field)
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
