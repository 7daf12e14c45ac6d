"""`tunelab feedback import FILE`: many answers at once, from CSV/TSV/JSONL/JSON/parquet.

Columns: `request_id` (required: the logged input's id), then any of `label`, `entities`,
`ideal_answer`, `rating`, `metadata` (in CSV, `entities` and `metadata` are JSON text). Every
row is checked first, against the database (does the id exist, does the label belong to the
model that answered) and by store.feedback.check_answer; any error names the file, the row and
the column, and then nothing is stored. Otherwise all rows go in one transaction.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tunelab.errors import DataError, TunelabError
from tunelab.store.feedback import ANSWER_FIELDS, FeedbackError, add_many, check_answer

COLUMNS = ("request_id", *ANSWER_FIELDS, "metadata")
MAX_SHOWN = 20  # errors listed before "... and N more"


class ImportErrors(TunelabError):
    """Rows of an import that cannot be stored: the first one is the message, all of them
    (DataErrors naming file, row and column) are in `errors`."""

    def __init__(self, errors: list[DataError]):
        extra = f" (and {len(errors) - 1} more rows with errors)" if len(errors) > 1 else ""
        super().__init__(f"{errors[0]}{extra}")
        self.errors = errors

    def lines(self) -> list[str]:
        shown = [str(e) for e in self.errors[:MAX_SHOWN]]
        if len(self.errors) > MAX_SHOWN:
            shown.append(f"... and {len(self.errors) - MAX_SHOWN} more rows with errors")
        return shown


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _json_cell(value: Any, name: str, row: int, column: str, want: type) -> Any:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise DataError(name, f"not JSON ({exc.msg})", row=row, column=column) from None
    if not isinstance(value, want):
        kind = "a JSON list" if want is list else "a JSON object"
        raise DataError(name, f"must be {kind}", row=row, column=column)
    return value


def _rating(value: Any, name: str, row: int) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(name, f"not a number: {value!r}", row=row, column="rating") from None


def _answer(record: dict, name: str, row: int) -> tuple[str, dict, dict | None]:
    rid = record.get("request_id")
    if _blank(rid):
        raise DataError(
            name, "empty; every row names the logged input", row=row, column="request_id"
        )
    answer: dict[str, Any] = {}
    for k in ANSWER_FIELDS:
        v = record.get(k)
        if _blank(v):
            continue
        if k == "entities":
            v = _json_cell(v, name, row, k, list)
        elif k == "rating":
            v = _rating(v, name, row)
        elif not isinstance(v, str):
            v = str(v)
        answer[k] = v
    meta = record.get("metadata")
    meta = None if _blank(meta) else _json_cell(meta, name, row, "metadata", dict)
    return str(rid).strip(), answer, meta


def read_answers(
    engine, path: str | Path
) -> tuple[list[tuple[str, dict, dict, dict | None]], list[str]]:
    """The checked (request_id, answer, logged, metadata) of every row of `path`, and the
    file's ignored columns. ImportErrors lists every row that cannot be stored."""
    from tunelab.data.readers import read_table, require_columns
    from tunelab.store.feedback import logged_input

    name = str(path)
    df = read_table(path)
    require_columns(df, name, ["request_id"])
    ignored = [str(c) for c in df.columns if c not in COLUMNS]
    cache: dict[str, dict | None] = {}
    items, errors = [], []
    for row, record in zip(df.index, df.to_dict(orient="records")):
        try:
            rid, answer, meta = _answer(record, name, int(row))
            if rid not in cache:
                cache[rid] = logged_input(engine, rid)
            logged = cache[rid]
            if logged is None:
                raise DataError(
                    name, f"no logged input has id {rid!r}", row=int(row), column="request_id"
                )
            try:
                check_answer(answer, logged)
            except FeedbackError as exc:
                column = exc.field or "request_id"
                message = exc.message.split(": ", 1)[-1] if exc.field else exc.message
                raise DataError(name, message, row=int(row), column=column) from None
            items.append((rid, answer, logged, meta))
        except DataError as exc:
            errors.append(exc)
    if errors:
        raise ImportErrors(errors)
    return items, ignored


def import_feedback(engine, path: str | Path) -> dict:
    """Check every row of `path`, then store them all (one transaction) or none. Returns
    {"file", "answers", "inputs", "new_versions" (answers that revise an earlier one),
    "models", "ignored_columns"}."""
    items, ignored = read_answers(engine, path)
    stored = add_many(engine, items, source=f"import:{Path(path).name}")
    return {
        "file": str(path),
        "answers": len(stored),
        "inputs": len({s["request_id"] for s in stored}),
        "new_versions": sum(1 for s in stored if s["version"] > 1),
        "models": sorted({s["model"] for s in stored if s["model"]}),
        "ignored_columns": ignored,
    }
