"""Errors a user can act on. Each renders as one line that names where the problem is."""

from __future__ import annotations


class TunelabError(Exception):
    """Base class: the CLI prints `error: <message>` and exits with `exit_code`."""

    exit_code = 2


class ConfigError(TunelabError):
    """A config value is wrong. `path` is the dotted config path (`train.lr`)."""

    def __init__(self, path: str, message: str, value: object = None, *, has_value: bool = False):
        self.path, self.value = path, value
        text = f"{path}: {message}" if path else message
        if has_value:
            text += f", got {value!r}"
        super().__init__(text)


class DataError(TunelabError):
    """Bad data. Names the file, and the 1-based row (line for JSONL) and column when known."""

    def __init__(
        self, file: str, message: str, *, row: int | None = None, column: str | None = None
    ):
        self.file, self.row, self.column = str(file), row, column
        where = self.file
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {message}")


class OutputFileError(TunelabError):
    """A file tunelab wrote (results.json, tunelab.json) that cannot be read as its schema
    says. Names the file, and the field when one is at fault."""

    def __init__(self, file: str, message: str, *, field: str | None = None):
        self.file, self.field = str(file), field
        where = self.file if field is None else f"{self.file}, field '{field}'"
        super().__init__(f"{where}: {message}")


class ModelSourceError(TunelabError):
    """A model reference that cannot be resolved or loaded."""


class RunDirError(TunelabError):
    """The output directory holds something that would be clobbered."""


class Interrupted(TunelabError):
    """Training was stopped by the user; a checkpoint was written."""

    exit_code = 130
