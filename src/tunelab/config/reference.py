"""Render the config schema as the markdown table in docs/config.md.

`python -m tunelab.config.reference > docs/config.md`; a test keeps the file in step.
"""

from __future__ import annotations

from pydantic import BaseModel

from tunelab.config.schema import RunConfig


def _type(annotation) -> str:
    text = str(annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")
    return text.replace("tunelab.config.schema.", "")


def _rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows += _rows(ann, f"{prefix}{name}.")
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
