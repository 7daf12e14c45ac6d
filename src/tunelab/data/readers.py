"""Read a data file into a DataFrame whose index is the row number a user would look up.

Every problem a user can fix (missing file, bad bytes, a broken line) becomes a `DataError`
that names the file and, when known, the row and column, so the CLI can print one line
instead of a stack trace. Rows are numbered from 1: for JSON Lines the line in the file
(blank lines skipped but counted), for every other format the record number. A column
named twice (CSV/TSV header, parquet schema, a JSON key repeated in one object) is an error:
pandas would rename or json would drop one copy, and training would silently use the other.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import warnings
from difflib import get_close_matches
from pathlib import Path

import numpy as np
import pandas as pd

from tunelab.errors import DataError

SUPPORTED = (".csv", ".tsv", ".jsonl", ".ndjson", ".json", ".parquet")
_SEP = {".csv": ",", ".tsv": "\t"}


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a .csv/.tsv/.jsonl/.ndjson/.json/.parquet file or a `save_to_disk` datasets dir.

    Returns a DataFrame indexed by 1-based row number with `attrs["source"] = str(path)`.
    List-valued cells (multi-label) stay Python lists.
    """
    name = str(path)
    p = Path(path)
    if not p.exists():
        raise DataError(name, "file not found; check the path (relative to the current directory)")
    if p.is_dir():
        df = _read_hf_dir(p, name)
    else:
        ext = p.suffix.lower()
        if ext not in SUPPORTED:
            raise DataError(
                name,
                f"unsupported file type '{ext or p.name}'; supported: {', '.join(SUPPORTED)}, "
                "or a directory written by datasets' save_to_disk",
            )
        if p.stat().st_size == 0:
            raise DataError(name, "empty file")
        if ext == ".parquet":
            df = _read_parquet(p, name)
        elif ext in _SEP:
            df = _read_csv(_decode(p, name, ext), name, _SEP[ext])
        else:
            df = (_read_json if ext == ".json" else _read_jsonl)(_decode(p, name, ext), name)
    if len(df) == 0:
        raise DataError(name, "no rows (the file holds no data records)")
    df.attrs["source"] = name
    return df


def require_columns(df: pd.DataFrame, file: str, columns: list[str]) -> None:
    """Raise a DataError naming the first of `columns` that `df` lacks, listing those it has."""
    have = [str(c) for c in df.columns]
    for c in columns:
        if c not in df.columns:
            hint = get_close_matches(c, have, n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise DataError(
                file, f"column '{c}' not found; columns are: {', '.join(have)}{extra}", column=c
            )


def text_column(df: pd.DataFrame, file: str, column: str) -> list[str]:
    """Return `column` as a list of strings; missing or blank text is an error naming the row.

    Numbers are converted with str() (an id column used as text is odd but harmless); lists
    and dicts are refused because their str() is never the text a user meant.
    """
    require_columns(df, file, [column])
    out: list[str] = []
    bad: list[int] = []
    for row, v in zip(df.index, df[column].tolist(), strict=True):
        if isinstance(v, (list, tuple, dict, np.ndarray)):
            raise DataError(
                file, f"expected text, got a {type(v).__name__}", row=_row(row), column=column
            )
        missing = v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
        s = "" if missing else v if isinstance(v, str) else str(v)
        if s.strip():
            out.append(s)
        else:
            bad.append(row)
    if bad:
        raise DataError(
            file,
            f"empty text; {len(bad)} of {len(df)} rows have none (rows {_few(bad)})",
            row=_row(bad[0]),
            column=column,
        )
    return out


def _row(r: object) -> int | None:
    return int(r) if isinstance(r, (int, np.integer)) else None


def _few(rows: list, k: int = 5) -> str:
    return ", ".join(str(r) for r in rows[:k]) + (", ..." if len(rows) > k else "")


def _numbered(df: pd.DataFrame, rows: list[int] | None = None) -> pd.DataFrame:
    df.index = pd.Index(rows) if rows is not None else pd.RangeIndex(1, len(df) + 1)
    return df


def _decode(p: Path, name: str, ext: str) -> str:
    """Read the file as UTF-8 (a BOM is dropped), pointing at the first bad byte if any."""
    data = p.read_bytes()
    if not data.strip():
        raise DataError(name, "empty file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        row: int | None = None if ext == ".json" else line
        if ext in (".csv", ".tsv"):
            row = _csv_record_at(data[: e.start].decode("utf-8-sig"), _SEP[ext])
        raise DataError(
            name,
            f"invalid UTF-8 byte 0x{data[e.start]:02x} at byte offset {e.start} (line {line}); "
            "save the file as UTF-8",
            row=row,
        ) from None


def _csv_record_at(prefix: str, sep: str) -> int | None:
    """1-based data record that contains the end of `prefix` (None: inside the header)."""
    csv.field_size_limit(2**31 - 1)
    try:
        n = sum(1 for _ in csv.reader(io.StringIO(prefix + "x"), delimiter=sep))
    except csv.Error:
        return None
    return n - 1 if n > 1 else None


def _read_csv(text: str, name: str, sep: str) -> pd.DataFrame:
    # Only empty cells are missing: "NA", "None" or "null" may well be a label or a text.
    # index_col=False: a row longer than the header must not silently become the index.
    kw = dict(sep=sep, keep_default_na=False, na_values=[""], index_col=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        try:
            df = pd.read_csv(io.StringIO(text), **kw)
        except pd.errors.EmptyDataError:
            raise DataError(name, "empty file") from None
        except pd.errors.ParserError as e:
            if sep != "\t":
                raise _csv_error(text, name, sep, e) from None
            try:  # GLUE-style TSVs use bare quotes inside text: retry without quoting
                df = pd.read_csv(io.StringIO(text), quoting=csv.QUOTE_NONE, **kw)
            except pd.errors.ParserError:
                raise _csv_error(text, name, sep, e) from None
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        raise _csv_error(text, name, sep, ValueError("a row has more fields than the header"))
    _no_repeated_columns(next(csv.reader(io.StringIO(text), delimiter=sep), []), name)
    return _numbered(df)


def _no_repeated_columns(names: list, name: str) -> None:
    """A header that names a column twice is an error: pandas would read the second copy as
    'text.1' and training would use the first, silently. Unnamed columns are not repeats."""
    first: dict[str, int] = {}
    for i, col in enumerate(map(str, names), 1):
        if col.strip() and col in first:
            raise DataError(
                name,
                f"the header names this column twice (fields {first[col]} and {i}); "
                "rename or remove one",
                column=col,
            )
        first.setdefault(col, i)


def _csv_error(text: str, name: str, sep: str, e: Exception) -> DataError:
    """Turn a pandas parser error into one that names the record."""
    msg = str(e).replace("Error tokenizing data. C error: ", "").strip()
    m = re.search(r"starting at row (\d+)", msg)
    if m:  # pandas counts lines from 0 with the header as line 0: that is the record number
        return DataError(
            name, "a quoted field is never closed (unbalanced '\"')", row=int(m.group(1))
        )
    csv.field_size_limit(2**31 - 1)
    try:
        reader = csv.reader(io.StringIO(text), delimiter=sep)
        header = next(reader)
        for rec, fields in enumerate(reader, 1):
            if len(fields) > len(header):
                return DataError(
                    name,
                    f"{len(fields)} fields but the header has {len(header)} "
                    f"(a stray {'tab' if sep == chr(9) else repr(sep)} or an unquoted field?)",
                    row=rec,
                )
    except csv.Error:
        pass
    return DataError(name, f"cannot parse: {msg}")


class _Repeats(dict):
    """A JSON object that had a key twice (json keeps the last value); `key` is that key."""

    key = ""


def _loads(text: str) -> tuple[object, list[str]]:
    """json.loads, with every object that repeats a key marked as `_Repeats`; also returns
    the repeated keys in the order found (empty: none)."""
    repeated: list[str] = []

    def pairs_hook(pairs: list[tuple[str, object]]) -> dict:
        d = dict(pairs)
        if len(d) == len(pairs):
            return d
        marked = _Repeats(d)
        keys = [k for k, _ in pairs]
        marked.key = next(k for i, k in enumerate(keys) if k in keys[:i])
        repeated.append(marked.key)
        return marked

    return json.loads(text, object_pairs_hook=pairs_hook), repeated


def _no_repeated_keys(records: list, rows: list[int], repeated: list[str], name: str) -> None:
    """Raise for the first record (numbered by `rows`) or nested object that repeats a key."""
    if not repeated:
        return
    row, key = next(
        ((r, rec.key) for r, rec in zip(rows, records) if isinstance(rec, _Repeats)),
        (None, repeated[0]),
    )
    where = "this record" if row is not None else "a nested object"
    raise DataError(
        name,
        f"key '{key}' appears twice in {where} (JSON keeps only the last value); "
        "rename or remove one",
        row=row,
        column=key,
    )


def _read_jsonl(text: str, name: str) -> pd.DataFrame:
    lines = text.split("\n")  # not splitlines(): U+2028 may sit unescaped inside a string
    kept = [(i, s) for i, s in enumerate(lines, 1) if s.strip()]
    rows = [i for i, _ in kept]
    try:  # fast path: one C-level parse of all lines as one array (~4x faster than per line)
        if not all(s.lstrip().startswith("{") and s.rstrip().endswith("}") for _, s in kept):
            raise ValueError
        records, repeated = _loads("[" + ",".join(s for _, s in kept) + "]")
        if len(records) != len(kept) or not all(isinstance(r, dict) for r in records):
            raise ValueError
    except ValueError:  # slow path, to say which line is broken
        records = [_jsonl_record(name, i, s) for i, s in kept]
        repeated = []
    _no_repeated_keys(records, rows, repeated, name)
    return _numbered(pd.DataFrame(records), rows)


def _jsonl_record(name: str, line: int, s: str) -> dict:
    try:
        obj, repeated = _loads(s)
    except json.JSONDecodeError as e:
        raise DataError(name, f"invalid JSON: {e.msg} (column {e.colno})", row=line) from None
    if not isinstance(obj, dict):
        raise DataError(name, f"expected one JSON object per line, got {_json_type(obj)}", row=line)
    _no_repeated_keys([obj], [line], repeated, name)
    return obj


def _json_type(obj: object) -> str:
    if isinstance(obj, (bool, int, float, str)) or obj is None:
        return {bool: "a boolean", str: "a string", type(None): "null"}.get(type(obj), "a number")
    return "an array" if isinstance(obj, list) else type(obj).__name__


def _read_json(text: str, name: str) -> pd.DataFrame:
    try:
        obj, repeated = _loads(text)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":  # several top-level values: it is JSON Lines
            return _read_jsonl(text, name)
        raise DataError(
            name, f"invalid JSON: {e.msg} (line {e.lineno}, column {e.colno})"
        ) from None
    if isinstance(obj, dict):
        lists = [k for k, v in obj.items() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(
                name,
                "expected a JSON array of objects, or an object with one list of rows; "
                f"found an object with keys: {', '.join(map(str, obj)) or '(none)'}",
            )
        obj = obj[lists[0]]
    if not isinstance(obj, list):
        raise DataError(name, f"expected a JSON array of objects, got {_json_type(obj)}")
    for i, rec in enumerate(obj, 1):
        if not isinstance(rec, dict):
            raise DataError(
                name, f"expected each record to be a JSON object, got {_json_type(rec)}", row=i
            )
    _no_repeated_keys(obj, list(range(1, len(obj) + 1)), repeated, name)
    return _numbered(pd.DataFrame(obj))


def _lists(df: pd.DataFrame) -> pd.DataFrame:
    """Arrow hands list cells back as numpy arrays; users (and labels.py) expect lists."""
    for c in df.columns:
        if df[c].dtype == object and any(isinstance(v, np.ndarray) for v in df[c].head(100)):
            df[c] = [v.tolist() if isinstance(v, np.ndarray) else v for v in df[c]]
    return df


def _read_parquet(p: Path, name: str) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(p).names
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise DataError(name, f"not a readable parquet file: {e}") from None
    _no_repeated_columns(names, name)  # pyarrow's own error ("Multiple matches...") is cryptic
    try:
        df = pd.read_parquet(p)
    except Exception as e:
        raise DataError(name, f"not a readable parquet file: {e}") from None
    return _numbered(_lists(df.reset_index(drop=True)))


def _read_hf_dir(p: Path, name: str) -> pd.DataFrame:
    """Read a datasets `save_to_disk` directory; ClassLabel names go to attrs["class_names"]."""
    if (p / "dataset_dict.json").exists():
        try:
            splits = json.loads((p / "dataset_dict.json").read_text())["splits"]
        except (OSError, ValueError, KeyError):
            splits = sorted(d.name for d in p.iterdir() if d.is_dir())
        raise DataError(
            name,
            "this is a DatasetDict with several splits; point at one split's folder "
            f"(splits: {', '.join(splits)}), e.g. {p / splits[0]}"
            if splits
            else "this is a DatasetDict with no splits",
        )
    if not ((p / "dataset_info.json").exists() or (p / "state.json").exists()):
        raise DataError(
            name,
            "is a directory, not a data file (nor a datasets directory written by save_to_disk); "
            f"supported files: {', '.join(SUPPORTED)}",
        )
    import datasets  # heavy: only when a datasets directory is read

    try:
        ds = datasets.load_from_disk(str(p))
    except Exception as e:
        raise DataError(name, f"cannot load the datasets directory: {e}") from None
    df = _lists(ds.to_pandas())
    df.attrs["class_names"] = {
        k: list(f.names) for k, f in ds.features.items() if isinstance(f, datasets.ClassLabel)
    }
    return _numbered(df)
