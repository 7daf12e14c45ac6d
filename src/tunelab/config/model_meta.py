"""`tunelab.json`, the file next to a saved model's weights: what reading, scoring and
serving need to use the model as it was trained (task, labels, max length, columns, base).

The defaults live here once: a file (or a hand-written one) without `task` is a
classification model, without `method` a full fine-tune, without `packing` packed, and a
model without `max_length` reads at most min(tokenizer limit, 512) tokens. Exports add their
own keys (`format`, `onnx`, `gguf`); other keys are kept as they are (extra="allow").
See output_file.py for the schema-version rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tunelab.config.output_file import read_output, validate_output, write_output
from tunelab.config.tasks import DEFAULT_TASK

META_FILE = "tunelab.json"
SCHEMA_VERSION = 1
FALLBACK_MAX_LENGTH = 512  # tokens, when neither tunelab.json nor the tokenizer says less


class ModelMeta(BaseModel):
    model_config = ConfigDict(extra="allow")

    schema_version: int = SCHEMA_VERSION
    task: str = DEFAULT_TASK
    labels: dict[str, Any] | None = None  # LabelSpace.to_dict(); None for tasks without labels
    max_length: int | None = None
    columns: dict[str, Any] = Field(default_factory=dict)  # text, text_pair, label, target, ...
    base_model: str | None = None
    method: str = "full"
    merged: bool | None = None
    packing: bool = True  # causal-lm: rows packed into blocks as in training
    generation: dict[str, Any] | None = None  # GenerationConfig fields the run used
    multitask: dict[str, Any] | None = None  # {name, tasks, shared_encoder} of a multitask run
    format: str | None = None  # exports: "onnx", "gguf"
    tunelab_version: str | None = None

    def max_length_for(self, tokenizer) -> int:
        """The max length to read inputs at: the saved one, else the tokenizer's, capped."""
        if self.max_length:
            return int(self.max_length)
        limit = getattr(tokenizer, "model_max_length", None) or FALLBACK_MAX_LENGTH
        return int(min(limit, FALLBACK_MAX_LENGTH))

    def updated(self, **changes: Any) -> ModelMeta:
        """A copy with `changes` (fields or extra keys), validated."""
        return ModelMeta.model_validate({**self.model_dump(exclude_unset=True), **changes})

    # Read-only dict access for callers written against the old dict (`meta.get("columns")`).
    # A field left at None reads as `default`, so `meta.get("generation") or {}` still works.
    def get(self, key: str, default: Any = None) -> Any:
        if key in type(self).model_fields:
            value = getattr(self, key)
        else:
            value = (self.model_extra or {}).get(key)
        return default if value is None else value

    def __contains__(self, key: object) -> bool:
        """A key the file (or the code that made this) set, as `key in dict` was."""
        return key in self.model_fields_set or key in (self.model_extra or {})

    def __getitem__(self, key: str) -> Any:
        if key in type(self).model_fields:
            return getattr(self, key)
        extra = self.model_extra or {}
        if key not in extra:
            raise KeyError(key)
        return extra[key]


def model_meta(value: ModelMeta | dict[str, Any] | None) -> ModelMeta:
    """A ModelMeta from itself, a dict of tunelab.json's shape ({} or None: the defaults)."""
    if isinstance(value, ModelMeta):
        return value
    return validate_output(value or {}, ModelMeta, SCHEMA_VERSION, META_FILE)


def has_model_meta(folder: str | Path) -> bool:
    return (Path(folder) / META_FILE).is_file()


def read_model_meta(folder: str | Path) -> ModelMeta:
    """The tunelab.json of a model folder; an error names the file (and field) when it is
    missing, broken, of the wrong shape or from a newer tunelab."""
    return read_output(Path(folder) / META_FILE, ModelMeta, SCHEMA_VERSION)


def write_model_meta(folder: str | Path, meta: ModelMeta | dict[str, Any]) -> dict[str, Any]:
    """Write folder/tunelab.json atomically (schema_version first); returns what was written."""
    return write_output(Path(folder) / META_FILE, model_meta(meta), SCHEMA_VERSION)
