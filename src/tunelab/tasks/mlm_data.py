"""Raw domain text for masked-LM pretraining: `.txt` files or a text column of a table.

Every error names the file, and the line/row and column when known (DESIGN.md), because a
user fixes the file, not the code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tunelab.data import read_table, require_columns
from tunelab.errors import DataError

TEXT_SUFFIXES = (".txt",)


@dataclass
class TextChunks:
    """One split of raw text: documents and the 1-based line/row each came from."""

    name: str
    file: str
    texts: list[str]
    rows: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def y(self) -> None:
        """No labels (kept so label-agnostic callers can ask)."""
        return None


def read_texts(name: str, path: str | Path, column: str) -> TextChunks:
    """Documents of a `.txt` file (one per non-empty line) or of `column` of any table
    read_table reads; blank rows are skipped, a file with no text at all is an error."""
    file = str(path)
    if Path(path).suffix.lower() in TEXT_SUFFIXES:
        return _read_txt(name, Path(path))
    df = read_table(path)
    require_columns(df, file, [column])
    texts, rows = [], []
    for row, v in zip(df.index, df[column].tolist(), strict=True):
        if isinstance(v, (list, tuple, dict, np.ndarray)):
            raise DataError(
                file, f"expected text, got a {type(v).__name__}", row=int(row), column=column
            )
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            continue
        s = v if isinstance(v, str) else str(v)
        if s.strip():
            texts.append(s)
            rows.append(int(row))
    if not texts:
        raise DataError(file, f"no text: all {len(df)} rows are empty", column=column)
    return TextChunks(name, file, texts, rows)


def _read_txt(name: str, p: Path) -> TextChunks:
    file = str(p)
    if not p.is_file():
        raise DataError(file, "file not found; check the path (relative to the current directory)")
    data = p.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(
            file, f"invalid UTF-8 byte 0x{data[e.start]:02x}; save the file as UTF-8", row=line
        ) from None
    texts, rows = [], []
    for i, line in enumerate(text.split("\n"), 1):
        s = line.rstrip("\r")
        if s.strip():
            texts.append(s)
            rows.append(i)
    if not texts:
        raise DataError(file, "empty file (no non-blank lines)")
    return TextChunks(name, file, texts, rows)
