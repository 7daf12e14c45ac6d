"""Which columns `tunelab eval` reads from a file, and a missing-column error that says how to
map them.

A model reads the columns it was trained on (its tunelab.json) unless `--text-column`,
`--pair-column` or `--label-column` name others. A file with other names failed with the
column it lacks and the file's columns, but not that the flags exist; `column_hint` adds
them (and, for a column a flag named, which flag).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tunelab.errors import DataError

FLAGS = {"text": "--text-column", "text_pair": "--pair-column", "label": "--label-column"}
_WHAT = {"text": "text", "text_pair": "second text (pairs)", "label": "label"}


@contextmanager
def column_hint(given: dict[str, str | None], used: dict[str, str | None]) -> Iterator[None]:
    """Re-raise a DataError about a missing column that one of the flags maps, with the flag.
    `given`: {role: the flag's value or None}; `used`: {role: the column read} (role: text,
    text_pair, label)."""
    try:
        yield
    except DataError as exc:
        role = next((r for r, c in used.items() if c and c == exc.column), None)
        if role is None or "not found" not in str(exc):
            raise
        if given.get(role):
            hint = f"'{exc.column}' was given by {FLAGS[role]}; name a column of the file there"
        else:
            others = ", ".join(f for r, f in FLAGS.items() if r != role)
            hint = (
                f"'{exc.column}' is the {_WHAT[role]} column the model was trained on; pass "
                f"{FLAGS[role]} COLUMN to read another (and {others} for the others)"
            )
        exc.args = (f"{exc.args[0]}; {hint}",)
        raise
