"""The per-task `data:` sections of `procedure: {name: multitask}`, validated as DataConfig.

`MultitaskEntry.data` is a plain mapping (config/procedure.py cannot import schema.py, which
imports it); this module checks each one as a full `data:` section so that an error names
`procedure.tasks.<i>.data.<key>`, before any data or weights load.
"""

from __future__ import annotations

import re

from pydantic import ValidationError

from tunelab.config.schema import DataConfig, RunConfig
from tunelab.errors import ConfigError

FOLDABLE = ("lora", "dora", "ia3")  # peft updates merge_and_unload folds into the encoder
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")  # a folder name and a module key


def task_data_configs(cfg: RunConfig) -> list[DataConfig]:
    """One DataConfig per `procedure.tasks` entry; ConfigError naming the entry and key."""
    from tunelab.config.load import format_validation_error

    out, seen = [], set()
    for i, entry in enumerate(cfg.procedure.tasks):
        where = f"procedure.tasks.{i}"
        if not _NAME.match(entry.name):
            raise ConfigError(
                f"{where}.name", "letters, digits, '_' and '-' only", entry.name, has_value=True
            )
        if entry.name in seen:
            raise ConfigError(
                f"{where}.name", "two tasks share this name", entry.name, has_value=True
            )
        seen.add(entry.name)
        try:
            data = DataConfig.model_validate(entry.data)
        except ValidationError as exc:
            raise format_validation_error(exc, f"{where}.data") from None
        if data.text_pair is not None and data.text_pair == data.text:
            raise ConfigError(f"{where}.data.text_pair", "must differ from data.text")
        if entry.task != "classification" and data.text_pair is not None:
            raise ConfigError(
                f"{where}.data.text_pair",
                f"sentence pairs are for classification, not task '{entry.task}'",
            )
        if data.prepare is not None:
            raise ConfigError(
                f"{where}.data.prepare",
                "not supported with procedure multitask; prepare each task's data first "
                "(`tunelab data prepare`) and point train/validation at the result",
            )
        out.append(data)
    if cfg.data is not None:
        raise ConfigError(
            "data", "procedure multitask reads each task's data from procedure.tasks.<i>.data"
        )
    if cfg.method.name not in ("full", "freeze", *FOLDABLE):
        raise ConfigError(
            "method.name",
            "procedure multitask saves one plain model per task: use full, freeze, "
            + ", ".join(FOLDABLE),
            cfg.method.name,
            has_value=True,
        )
    if cfg.method.name in FOLDABLE and cfg.method.merge is False:
        raise ConfigError(
            "method.merge",
            "procedure multitask saves one merged model per task; false is not supported",
        )
    return out


def task_config(cfg: RunConfig, index: int, data: DataConfig) -> RunConfig:
    """The run config as task `index` sees it: its task name and its data section."""
    task = cfg.procedure.tasks[index].task
    return cfg.model_copy(update={"task": task, "data": data})
