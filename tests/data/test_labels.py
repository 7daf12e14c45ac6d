"""Label discovery and encoding: order rules, multi-label, and errors that name file and row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tunelab.data import LabelSpace, discover_labels, encode_labels, label_counts, read_table
from tunelab.errors import ConfigError, DataError


def frame(labels: list, source: str = "train.jsonl", start: int = 1) -> pd.DataFrame:
    df = pd.DataFrame({"text": [f"t{i}" for i in range(len(labels))], "label": labels})
    df.index = pd.RangeIndex(start, start + len(labels))
    df.attrs["source"] = source
    return df


def test_int_labels_sorted_and_remapped():
    train = frame([3, 1, 2, 1])
    space = discover_labels([train], "label")
    assert space == LabelSpace(["1", "2", "3"], False, [1, 2, 3])
    y = encode_labels(train, "label", space)
    assert y.dtype == np.int64 and y.shape == (4,)
    assert y.tolist() == [2, 0, 1, 0]
    assert label_counts(y, space) == {"1": 2, "2": 1, "3": 1}


def test_str_labels_sorted():
    space = discover_labels([frame(["pos", "neg", " pos "])], "label")
    assert space.names == ["neg", "pos"] and not space.multi_label
    assert encode_labels(frame(["pos", "neg"]), "label", space).tolist() == [1, 0]


def test_bool_labels():
    space = discover_labels([frame([True, False, True])], "label")
    assert space.names == ["False", "True"]
    assert encode_labels(frame([True, False]), "label", space).tolist() == [1, 0]


def test_label_names_for_ints_is_positional():
    train = frame([1, 2, 1])  # class 0 never occurs in train: fine with label_names
    space = discover_labels([train], "label", ["one star", "two stars", "three stars"])
    assert space.names == ["one star", "two stars", "three stars"]
    assert encode_labels(frame([0, 2]), "label", space).tolist() == [0, 2]
    # digit names must not be looked up by value: int label i is name i
    space = discover_labels([frame([0, 1, 2])], "label", ["1", "2", "3"])
    assert encode_labels(frame([0, 1, 2]), "label", space).tolist() == [0, 1, 2]


def test_label_names_fix_string_order_and_allow_unseen_in_test():
    train = frame(["pos", "neg", "pos"])
    test = frame(["neutral", "pos"], source="test.jsonl")
    space = discover_labels([train, test], "label", ["pos", "neutral", "neg"])
    assert space.names == ["pos", "neutral", "neg"]
    assert encode_labels(test, "label", space).tolist() == [1, 0]


def test_label_names_errors_name_row():
    with pytest.raises(
        DataError, match=r"train\.jsonl, row 2, column 'label': label 5 is out of range"
    ):
        discover_labels([frame([0, 5, 1])], "label", ["a", "b"])
    with pytest.raises(
        DataError,
        match=r"val\.csv, row 11, column 'label': label 'meh' is not in label_names \(a, b\)",
    ):
        discover_labels(
            [frame(["a", "b"]), frame(["a", "meh"], "val.csv", start=10)], "label", ["a", "b"]
        )
    with pytest.raises(ConfigError, match="data.label_names: lists 'a' more than once"):
        discover_labels([frame(["a", "b"])], "label", ["a", "b", "a"])


def test_multi_label_lists():
    train = frame([["b", "a"], ["c"], []])
    space = discover_labels([train], "label")
    assert space == LabelSpace(["a", "b", "c"], True, None)
    y = encode_labels(train, "label", space)
    assert y.dtype == np.float32 and y.shape == (3, 3)
    assert y.tolist() == [[1, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert label_counts(y, space) == {"a": 1, "b": 1, "c": 1}
    ints = discover_labels([frame([[0, 2], [1]])], "label", ["x", "y", "z"])
    assert ints.multi_label and encode_labels(frame([[2]]), "label", ints).tolist() == [[0, 0, 1]]


def test_multi_label_json_strings_from_csv(tmp_path):
    p = tmp_path / "ml.csv"
    pd.DataFrame({"text": ["x", "y"], "label": ['["a", "b"]', '["b"]']}).to_csv(p, index=False)
    df = read_table(p)
    space = discover_labels([df], "label")
    assert space.multi_label and space.names == ["a", "b"]
    assert encode_labels(df, "label", space).tolist() == [[1, 1], [0, 1]]


def test_comma_string_is_not_multi_label():
    space = discover_labels([frame(["a,b", "c"])], "label")
    assert space.names == ["a,b", "c"] and not space.multi_label


def test_missing_labels_counted():
    train = frame(["a", None, "b", "", float("nan")])
    with pytest.raises(DataError) as e:
        discover_labels([train], "label")
    msg = str(e.value)
    assert msg.startswith("train.jsonl, row 2, column 'label': label missing; 3 of 5 rows")
    assert "rows 2, 4, 5" in msg


def test_ints_with_gaps_read_as_float_still_ints():
    space = discover_labels([frame([1.0, 0.0, 1.0])], "label")
    assert space.names == ["0", "1"]


def test_mixed_types_name_rows():
    with pytest.raises(DataError) as e:
        discover_labels([frame([1, 0, "1", 1])], "label")
    msg = str(e.value)
    assert msg.startswith("train.jsonl, row 3, column 'label': labels mix types")
    assert "3 rows hold int" in msg and "1 rows hold str (e.g. row 3: '1')" in msg
    with pytest.raises(DataError, match=r"row 2.*list of labels"):
        discover_labels([frame([["a"], "b", ["c"]])], "label")


def test_single_class():
    with pytest.raises(
        DataError, match=r"train\.jsonl, column 'label': needs at least 2 classes, found only 'x'"
    ):
        discover_labels([frame(["x", "x"]), frame(["y"], "val.jsonl")], "label")
    with pytest.raises(DataError, match="needs at least 2 distinct labels, found only 'a'"):
        discover_labels([frame([["a"], [], ["a"]])], "label")


def test_negative_labels_unlabeled_test():
    test = frame([-1, -1, -1], source="test.jsonl")
    with pytest.raises(DataError) as e:
        discover_labels([frame([0, 1]), test], "label")
    msg = str(e.value)
    assert msg.startswith("test.jsonl, row 1, column 'label': 3 rows have label -1")
    assert "unlabeled rows? remove them or drop data.test" in msg


def test_unseen_label_in_validation_needs_label_names():
    val = frame(["a", "c"], source="val.jsonl", start=1)
    with pytest.raises(
        DataError,
        match=r"val\.jsonl, row 2, column 'label': label 'c' does not occur in the training data",
    ):
        discover_labels([frame(["a", "b"]), val], "label")


def test_encode_unknown_and_missing_column():
    space = discover_labels([frame(["a", "b"])], "label")
    with pytest.raises(
        DataError,
        match=r"test\.jsonl, row 2, column 'label': label 'z' is not one of the 2 known labels",
    ):
        encode_labels(frame(["a", "z"], "test.jsonl"), "label", space)
    with pytest.raises(DataError, match="column 'tag' not found; columns are: text, label"):
        discover_labels([frame(["a", "b"])], "tag")


def test_label_space_round_trip():
    space = LabelSpace(["neg", "pos"], False, [0, 1])
    assert LabelSpace.from_dict(space.to_dict()) == space
    assert LabelSpace.from_dict({"names": ["a", "b"], "multi_label": True}).values is None
