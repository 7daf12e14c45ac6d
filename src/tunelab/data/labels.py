"""Find the label set of a classification dataset and turn labels into ids.

Labels may be ints, strings or booleans, or (multi-label) lists of those; a CSV column of
JSON-looking lists ("[\"a\", \"b\"]") counts as lists. The label space is decided on the
training data, so a label seen only in validation/test is an error unless `label_names`
fixes the classes up front. Problems name the file, the row and the column.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tunelab.data.readers import _few, _row, require_columns
from tunelab.errors import ConfigError, DataError

_MISSING = object()
_TYPE = {bool: "bool", int: "int", str: "str"}


@dataclass(frozen=True)
class LabelSpace:
    """The classes of a task: id i is `names[i]`.

    `values` holds the integer label in the data for each id when the data's labels are
    ints/bools (e.g. star ratings 1..5 -> ids 0..4); None means the names are the labels.
    """

    names: list[str]
    multi_label: bool
    values: list[int] | None = field(default=None)

    @property
    def num_labels(self) -> int:
        return len(self.names)

    def to_dict(self) -> dict:
        return {"names": list(self.names), "multi_label": self.multi_label, "values": self.values}

    @classmethod
    def from_dict(cls, d: dict) -> LabelSpace:
        values = d.get("values")
        return cls(
            names=[str(n) for n in d["names"]],
            multi_label=bool(d.get("multi_label", False)),
            values=None if values is None else [int(v) for v in values],
        )


def discover_labels(
    frames: list[pd.DataFrame], column: str, label_names: list[str] | None = None
) -> LabelSpace:
    """Decide the label space from `frames` (training data first, then validation/test).

    Without `label_names`: int labels -> sorted ints, str labels -> sorted strings,
    bool -> "False", "True". With them: int label i is `label_names[i]`; string labels must
    be among them, in their order.
    """
    if label_names is not None and len(set(label_names)) != len(label_names):
        dup = next(n for n in label_names if label_names.count(n) > 1)
        raise ConfigError("data.label_names", f"lists '{dup}' more than once")
    if not frames:
        raise ValueError("discover_labels needs at least the training frame")
    obs = [(_src(df), _cells(df, column)) for df in frames]  # [(file, [(row, value)])]
    for file, cells in obs:
        miss = [r for r, v in cells if v is _MISSING]
        if miss:
            raise DataError(
                file,
                f"label missing; {len(miss)} of {len(cells)} rows have none (rows {_few(miss)})",
                row=miss[0],
                column=column,
            )
    multi = _check_shape(obs, column)
    flat = [(f, r, x) for f, cells in obs for r, v in cells for x in (v if multi else [v])]
    kind = _check_types(flat, column)
    neg = [(f, r, x) for f, r, x in flat if kind == "int" and x < 0]
    if neg:
        f, r, x = neg[0]
        raise DataError(
            f,
            f"{sum(1 for n in neg if n[0] == f)} rows have label {x} (e.g. rows "
            f"{_few([n[1] for n in neg if n[0] == f])}): unlabeled rows? remove them or drop data.test",
            row=r,
            column=column,
        )
    train_file = obs[0][0]
    seen = {x for _, v in obs[0][1] for x in (v if multi else [v])}
    if len(seen) < 2:
        only = f"only '{next(iter(seen))}'" if seen else "none"
        what = "distinct labels" if multi else "classes"
        raise DataError(train_file, f"needs at least 2 {what}, found {only}", column=column)

    if label_names is not None:
        names = list(label_names)
        values = list(range(len(names))) if kind in ("int", "bool") else None
        for f, r, x in flat:
            if kind == "str" and x not in names:
                raise DataError(
                    f,
                    f"label '{x}' is not in label_names ({_few(names, 10)})",
                    row=r,
                    column=column,
                )
            if kind != "str" and not 0 <= int(x) < len(names):
                raise DataError(
                    f,
                    f"label {x} is out of range: label_names has {len(names)} names "
                    f"(ids 0..{len(names) - 1})",
                    row=r,
                    column=column,
                )
        return LabelSpace(names, multi, values)

    for f, r, x in flat:
        if x not in seen:
            raise DataError(
                f,
                f"label '{x}' does not occur in the training data ({train_file}); "
                "give data.label_names to allow it",
                row=r,
                column=column,
            )
    if kind == "bool":
        return LabelSpace(["False", "True"], multi, [0, 1])
    if kind == "int":
        ints = sorted(seen)
        return LabelSpace([str(i) for i in ints], multi, ints)
    return LabelSpace(sorted(seen), multi, None)


def encode_labels(df: pd.DataFrame, column: str, space: LabelSpace) -> np.ndarray:
    """Label ids: int64 (N,) for single-label, float32 multi-hot (N, C) for multi-label."""
    file = _src(df)
    by_name = {n: i for i, n in enumerate(space.names)}
    by_value = {v: i for i, v in enumerate(space.values)} if space.values is not None else None

    def ident(r: int, x: object) -> int:
        if isinstance(x, str):
            i = by_name.get(x)
        else:
            x = int(x)  # type: ignore[call-overload]
            if x < 0:
                raise DataError(
                    file,
                    f"label {x}: unlabeled rows? remove them or drop data.test",
                    row=r,
                    column=column,
                )
            i = by_value.get(x) if by_value is not None else (x if x < space.num_labels else None)
        if i is None:
            raise DataError(
                file,
                f"label {x!r} is not one of the {space.num_labels} known labels "
                f"({_few(space.names, 10)})",
                row=r,
                column=column,
            )
        return i

    cells = _cells(df, column)
    shape = (len(cells), space.num_labels) if space.multi_label else (len(cells),)
    y = np.zeros(shape, dtype=np.float32 if space.multi_label else np.int64)  # (N, C) or (N,)
    for k, (r, v) in enumerate(cells):
        if v is _MISSING:
            raise DataError(file, "label missing", row=r, column=column)
        if isinstance(v, list) != space.multi_label:
            want = "a list of labels (multi-label)" if space.multi_label else "a single label"
            raise DataError(file, f"expected {want}, got {v!r}", row=r, column=column)
        if space.multi_label:
            for x in v:
                y[k, ident(r, x)] = 1.0
        else:
            y[k] = ident(r, v)
    return y


def label_counts(y: np.ndarray, space: LabelSpace) -> dict[str, int]:
    """Rows per label name (for multi-label, rows that carry the label)."""
    if space.multi_label:
        counts = np.asarray(y).sum(axis=0) if len(y) else np.zeros(space.num_labels)
    else:
        counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=space.num_labels)
    return {n: int(c) for n, c in zip(space.names, counts, strict=False)}


def _src(df: pd.DataFrame) -> str:
    return str(df.attrs.get("source", "<data>"))


def _cells(df: pd.DataFrame, column: str) -> list[tuple[int, object]]:
    """(row, normalized label) per row: a scalar, a list of scalars, or _MISSING."""
    file = _src(df)
    require_columns(df, file, [column])
    raw = df[column].tolist()
    strs = [v for v in raw if isinstance(v, str) and v.strip()]
    as_json = (
        bool(strs)
        and all(v.lstrip().startswith("[") for v in strs)
        and all(isinstance(v, str) or _scalar(v) is _MISSING for v in raw)
    )
    out = []
    for r, v in zip(df.index, raw, strict=True):
        r = _row(r)
        if as_json and isinstance(v, str) and v.strip():
            try:
                v = json.loads(v)
            except json.JSONDecodeError as e:
                raise DataError(
                    file, f"cannot parse the label list {v!r}: {e.msg}", row=r, column=column
                ) from None
        if isinstance(v, (list, tuple, np.ndarray)):
            items = [_scalar(x) for x in v]
            if any(x is _MISSING or x is None or isinstance(x, list) for x in items):
                raise DataError(
                    file,
                    f"a label list may hold only labels, got {list(v)!r}",
                    row=r,
                    column=column,
                )
            out.append((r, items))
        else:
            x = _scalar(v)
            if x is None:
                raise DataError(
                    file,
                    f"label {v!r} is not a class: labels are ints, strings or booleans "
                    "(or lists of them for multi-label)",
                    row=r,
                    column=column,
                )
            out.append((r, x))
    return out


def _scalar(v: object) -> object:
    """Python int/str/bool for one label, _MISSING for no label, None for a bad value."""
    if v is None or v is pd.NA:
        return _MISSING
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return _MISSING
        # Ints with a gap in the column come back as floats (1.0): take them back.
        return int(v) if math.isfinite(v) and float(v).is_integer() else None
    if isinstance(v, str):
        return v.strip() or _MISSING
    if isinstance(v, (list, tuple, np.ndarray)):
        return list(v)
    return None


def _check_shape(obs: list, column: str) -> bool:
    """True for multi-label; mixing lists and single labels is an error."""
    rows = [(f, r, isinstance(v, list)) for f, cells in obs for r, v in cells]
    lists = [x for x in rows if x[2]]
    if lists and len(lists) != len(rows):
        odd = min([lists, [x for x in rows if not x[2]]], key=len)
        f, r, is_list = odd[0]
        raise DataError(
            f,
            f"{len(lists)} rows hold a list of labels (multi-label) and {len(rows) - len(lists)} "
            f"a single label; this row holds {'a list' if is_list else 'a single label'}",
            row=r,
            column=column,
        )
    return bool(lists)


def _check_types(flat: list, column: str) -> str:
    """The one type ('int', 'str' or 'bool') of every label; mixing is an error."""
    groups: dict[str, list] = {}
    for f, r, x in flat:
        groups.setdefault(_TYPE[type(x)], []).append((f, r, x))
    if len(groups) > 1:
        parts = [
            f"{len(g)} rows hold {t} (e.g. row {g[0][1]}: {g[0][2]!r})" for t, g in groups.items()
        ]
        odd = min(groups.values(), key=len)[0]
        hint = ""
        if "int" in groups and "str" in groups:
            hint = "; the text '1' and the number 1 are different labels"
        raise DataError(
            odd[0],
            f"labels mix types: {' and '.join(parts)}{hint}; use one type for every label",
            row=odd[1],
            column=column,
        )
    return next(iter(groups), "str")
