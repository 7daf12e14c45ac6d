"""Slices (`tunelab eval --group COL`): per-group metrics against hand counts, the best-worst
gap, small-slice flags, and group columns read by row (missing column -> DataError)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_jsonl

from tunelab.errors import DataError
from tunelab.evaluation.report.rows import RowOutputs
from tunelab.evaluation.report.slices import MISSING, read_groups, slice_metrics


def _outputs(name: str, correct: list[bool], loss: list[float]) -> RowOutputs:
    right, nll = np.asarray(correct), np.asarray(loss)

    def fn(idx):
        idx = np.asarray(idx)
        return {"accuracy": float(right[idx].mean()), "loss": float(nll[idx].mean())}

    return RowOutputs(name, "classification", len(right), fn, fn(np.arange(len(right))), right)


GROUPS = ["a", "a", "a", "a", "b", "b", "b", "c", "c", "c", "c", "c"]
CORRECT = [1, 1, 1, 0, 1, 0, 0, 1, 1, 1, 1, 1]  # a: 3/4, b: 1/3, c: 5/5
LOSS = [0.1, 0.2, 0.3, 2.0, 0.5, 1.5, 1.0, 0.1, 0.1, 0.2, 0.1, 0.0]


def test_per_group_accuracy_and_gap_hand_counted() -> None:
    out = _outputs("m", [bool(c) for c in CORRECT], LOSS)
    res = slice_metrics([out], GROUPS, column="grp", min_rows=1, samples=200)
    by = {s["value"]: s for s in res["slices"]}
    assert [s["value"] for s in res["slices"]] == ["c", "a", "b"]  # largest slice first
    assert {v: s["n"] for v, s in by.items()} == {"a": 4, "b": 3, "c": 5}
    acc = {v: s["models"]["m"]["accuracy"]["value"] for v, s in by.items()}
    assert acc == pytest.approx({"a": 0.75, "b": 1 / 3, "c": 1.0})
    for s in res["slices"]:  # interval around the slice's value (>= 2 rows each)
        a = s["models"]["m"]["accuracy"]
        assert a["low"] <= a["value"] <= a["high"]
    gap = res["gaps"]["m"]["accuracy"]
    assert gap["gap"] == pytest.approx(1.0 - 1 / 3)
    assert (gap["best_slice"], gap["worst_slice"]) == ("c", "b")
    # loss: lower is better, so the best slice is the lowest mean loss
    loss = {v: s["models"]["m"]["loss"]["value"] for v, s in by.items()}
    assert loss["b"] == pytest.approx(1.0) and loss["c"] == pytest.approx(0.1)
    lg = res["gaps"]["m"]["loss"]
    assert (lg["best_slice"], lg["worst_slice"]) == ("c", "b")
    assert lg["gap"] == pytest.approx(max(loss.values()) - min(loss.values()))


def test_small_slices_flagged_and_left_out_of_the_gap() -> None:
    out = _outputs("m", [bool(c) for c in CORRECT], LOSS)
    res = slice_metrics([out], GROUPS, column="grp", min_rows=4, samples=50)
    assert {s["value"]: s["small"] for s in res["slices"]} == {"a": False, "b": True, "c": False}
    assert res["gap_over"] == "large"  # a and c only: 1.0 - 0.75
    assert res["gaps"]["m"]["accuracy"]["gap"] == pytest.approx(0.25)
    res = slice_metrics([out], GROUPS, column="grp", min_rows=5, samples=50)
    assert res["gap_over"] == "all"  # only c is large: the gap falls back to every slice
    assert res["gaps"]["m"]["accuracy"]["gap"] == pytest.approx(1.0 - 1 / 3)


def test_one_row_slice_has_no_interval_and_two_models_are_kept_apart() -> None:
    groups = ["x", "y", "y"]
    a = _outputs("a", [True, True, False], [0.0, 0.0, 1.0])
    b = _outputs("b", [False, True, True], [1.0, 0.0, 0.0])
    res = slice_metrics([a, b], groups, column="g", min_rows=1, samples=30)
    x = next(s for s in res["slices"] if s["value"] == "x")
    assert x["models"]["a"]["accuracy"] == {"value": 1.0, "low": None, "high": None}
    assert x["models"]["b"]["accuracy"]["value"] == 0.0
    assert res["gaps"]["a"]["accuracy"]["best_slice"] == "x"
    assert res["gaps"]["b"]["accuracy"]["best_slice"] == "y"


def test_read_groups_by_row_missing_values_and_missing_column(tmp_path) -> None:
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [{"text": "t", "g": "a"}, {"text": "u", "g": None}, {"text": "v", "g": 2.0}],
    )
    assert read_groups(path, "g", 3) == ["a", MISSING, "2"]
    assert read_groups(path, "g", 2, rows=[1, 3]) == ["a", "2"]  # rows: the reader's row numbers
    with pytest.raises(DataError) as err:
        read_groups(path, "domain", 3)
    assert str(path) in str(err.value) and "'domain'" in str(err.value)
    assert err.value.column == "domain"
