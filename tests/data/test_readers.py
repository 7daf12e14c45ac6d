"""Readers: every format round-trips with row-numbered index; bad input names file and row."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from speed import best_seconds

from tunelab.data import read_table, require_columns, text_column
from tunelab.errors import DataError

ROWS = [
    {"text": "good film", "label": 1, "tags": ["a", "b"]},
    {"text": "bad film", "label": 0, "tags": []},
    {"text": "NA", "label": 1, "tags": ["b"]},
]
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def write_jsonl(path: Path, rows: list, blank_after: int | None = None) -> Path:
    lines = [json.dumps(r) for r in rows]
    if blank_after is not None:
        lines.insert(blank_after, "")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def check_rows(df: pd.DataFrame, path: Path, lists: bool = True) -> None:
    assert list(df.index) == [1, 2, 3]
    assert df.attrs["source"] == str(path)
    assert df["text"].tolist() == ["good film", "bad film", "NA"]
    assert df["label"].tolist() == [1, 0, 1]
    assert all(isinstance(v, int) for v in df["label"].tolist())
    if lists:
        assert df["tags"].tolist() == [["a", "b"], [], ["b"]]
        assert all(isinstance(v, list) for v in df["tags"])


def test_jsonl_round_trip_and_line_numbers(tmp_path):
    p = write_jsonl(tmp_path / "d.jsonl", ROWS)
    check_rows(read_table(p), p)
    # a blank line is skipped but still counted: rows are file line numbers
    p2 = write_jsonl(tmp_path / "gap.ndjson", ROWS, blank_after=1)
    df = read_table(p2)
    assert list(df.index) == [1, 3, 4]
    assert df.loc[3, "text"] == "bad film"


def test_csv_tsv_round_trip(tmp_path):
    df0 = pd.DataFrame(ROWS).drop(columns="tags")
    for ext, sep in [(".csv", ","), (".tsv", "\t")]:
        p = tmp_path / f"d{ext}"
        df0.to_csv(p, sep=sep, index=False)
        df = read_table(p)
        check_rows(df, p, lists=False)
        assert df.loc[3, "text"] == "NA"  # not turned into a missing value


def test_csv_empty_cell_is_missing(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("text,label\nhello,pos\n,neg\n")
    df = read_table(p)
    assert pd.isna(df.loc[2, "text"])
    assert df["label"].tolist() == ["pos", "neg"]


def test_tsv_with_bare_quotes_glue_style(tmp_path):
    p = tmp_path / "d.tsv"
    p.write_text('sentence\tlabel\n"a quote starts\t1\nplain\t0\n')
    df = read_table(p)
    assert df["sentence"].tolist() == ['"a quote starts', "plain"]
    assert df["label"].tolist() == [1, 0]


def test_json_array_and_wrapped_and_jsonl_content(tmp_path):
    p = tmp_path / "a.json"
    p.write_text(json.dumps(ROWS))
    check_rows(read_table(p), p)
    p = tmp_path / "w.json"
    p.write_text(json.dumps({"version": "1", "data": ROWS}))
    check_rows(read_table(p), p)
    p = write_jsonl(tmp_path / "lines.json", ROWS)
    check_rows(read_table(p), p)


def test_parquet_round_trip_keeps_lists(tmp_path):
    p = tmp_path / "d.parquet"
    pd.DataFrame(ROWS).to_parquet(p)
    check_rows(read_table(p), p)


def test_hf_dataset_dir(tmp_path):
    datasets = pytest.importorskip("datasets")
    cols = {k: [r[k] for r in ROWS] for k in ROWS[0]}
    ds = datasets.Dataset.from_dict(cols)
    ds.save_to_disk(str(tmp_path / "ds"))
    check_rows(read_table(tmp_path / "ds"), tmp_path / "ds")

    feats = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    dd = datasets.DatasetDict(
        train=datasets.Dataset.from_dict({"text": ["x", "y"], "label": [0, 1]}, features=feats),
        test=datasets.Dataset.from_dict({"text": ["z"], "label": [1]}, features=feats),
    )
    dd.save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(DataError, match="one split's folder") as e:
        read_table(tmp_path / "dd")
    assert "train" in str(e.value) and "test" in str(e.value)
    df = read_table(tmp_path / "dd" / "train")
    assert df["label"].tolist() == [0, 1]
    assert df.attrs["class_names"] == {"label": ["neg", "pos"]}


def test_missing_file_dir_and_extension(tmp_path):
    with pytest.raises(DataError, match="nope.jsonl: file not found; check the path"):
        read_table(tmp_path / "nope.jsonl")
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match="plain: is a directory"):
        read_table(tmp_path / "plain")
    p = tmp_path / "d.xlsx"
    p.write_text("x")
    with pytest.raises(DataError, match=r"d\.xlsx: unsupported file type '\.xlsx'.*\.jsonl"):
        read_table(p)


@pytest.mark.parametrize("name", ["e.jsonl", "e.csv", "e.tsv", "e.json", "e.parquet"])
def test_empty_file(tmp_path, name):
    p = tmp_path / name
    p.write_text("" if name.endswith("parquet") else "  \n\n")
    with pytest.raises(DataError, match=rf"{name}: empty file"):
        read_table(p)


def test_header_only_and_empty_array_have_no_rows(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("text,label\n")
    with pytest.raises(DataError, match="h.csv: no rows"):
        read_table(p)
    p = tmp_path / "a.json"
    p.write_text("[]")
    with pytest.raises(DataError, match="a.json: no rows"):
        read_table(p)


def test_non_utf8_byte_names_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(DataError) as e:
        read_table(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}, row 2: invalid UTF-8 byte 0xe9 at byte offset 28")
    p = tmp_path / "bad.csv"
    p.write_bytes(b"text,label\nok,1\ncaf\xe9,0\n")
    with pytest.raises(DataError, match=r"bad\.csv, row 2: invalid UTF-8 byte 0xe9.*line 3"):
        read_table(p)


def test_bom_is_dropped(tmp_path):
    p = tmp_path / "bom.csv"
    p.write_bytes("\ufefftext,label\nhi,1\nyo,0\n".encode())
    assert list(read_table(p).columns) == ["text", "label"]


def test_malformed_jsonl_line(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n{"text": "c", "label": \n')
    with pytest.raises(DataError, match=r"m\.jsonl, row 3: invalid JSON: Expecting value"):
        read_table(p)


def test_jsonl_line_not_object(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"text": "a"}\n\n["b", 0]\n')
    with pytest.raises(
        DataError, match=r"m\.jsonl, row 3: expected one JSON object per line, got an array"
    ):
        read_table(p)


def test_jsonl_two_objects_on_one_line_is_an_error(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"text": "a"}\n{"text": "b"}, {"text": "c"}\n')
    with pytest.raises(DataError, match=r"m\.jsonl, row 2: invalid JSON: Extra data"):
        read_table(p)


def test_bad_json_file(tmp_path):
    p = tmp_path / "b.json"
    p.write_text('[{"text": "a"},\n {"text": }]')
    with pytest.raises(DataError, match=r"b\.json: invalid JSON: Expecting value \(line 2"):
        read_table(p)
    p.write_text('{"a": [1], "b": [2]}')
    with pytest.raises(DataError, match="keys: a, b"):
        read_table(p)
    p.write_text('[{"text": "a"}, 3]')
    with pytest.raises(DataError, match=r"b\.json, row 2: expected each record"):
        read_table(p)


def test_csv_parse_errors_name_row(tmp_path):
    p = tmp_path / "p.csv"
    p.write_text("text,label\nfine,1\nnot, fine,0\nok,1\n")
    with pytest.raises(DataError, match=r"p\.csv, row 2: 3 fields but the header has 2"):
        read_table(p)
    p.write_text("text,label\nfine,1,extra\nok,0\n")  # pandas would make 'fine' the index
    with pytest.raises(DataError, match=r"p\.csv, row 1: 3 fields but the header has 2"):
        read_table(p)
    p.write_text('text,label\nfine,1\nx,0\n"never closed,1\nok,0\n')
    with pytest.raises(DataError, match=r"p\.csv, row 3: a quoted field is never closed"):
        read_table(p)


def test_repeated_csv_tsv_column_is_an_error(tmp_path):
    # pandas reads the second 'text' as 'text.1' and training used the first, silently
    for ext, sep in [(".csv", ","), (".tsv", "\t")]:
        p = tmp_path / f"dup{ext}"
        p.write_text(sep.join(["text", "label", "text"]) + "\n" + sep.join("a1b") + "\n")
        with pytest.raises(DataError, match=rf"dup\{ext}, column 'text': .*fields 1 and 3"):
            read_table(p)
    p = tmp_path / "blank.csv"  # unnamed columns (trailing commas) are not repeats
    p.write_text("text,label,,\na,1,,\n")
    assert read_table(p).columns[:2].tolist() == ["text", "label"]


def test_repeated_json_key_is_an_error(tmp_path):
    # json.loads keeps the last of two equal keys: the first value was lost silently
    p = tmp_path / "dup.jsonl"
    p.write_text('{"text": "a", "label": 1}\n{"text": "b", "text": "c", "label": 0}\n')
    with pytest.raises(DataError, match=r"dup\.jsonl, row 2, column 'text': .*twice"):
        read_table(p)
    p = tmp_path / "dup.json"
    p.write_text('[{"text": "a", "label": 1}, {"label": 0, "text": "b", "text": "c"}]')
    with pytest.raises(DataError, match=r"dup\.json, row 2, column 'text': .*twice"):
        read_table(p)


def test_repeated_parquet_column_is_an_error(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "dup.parquet"
    names = ["text", "label", "text"]
    pq.write_table(pa.table([pa.array(["a"]), pa.array([1]), pa.array(["b"])], names=names), p)
    with pytest.raises(DataError, match=r"dup\.parquet, column 'text': .*fields 1 and 3"):
        read_table(p)


def test_require_columns(tmp_path):
    df = pd.DataFrame({"sentence": ["a"], "label": [1]})
    with pytest.raises(DataError) as e:
        require_columns(df, "f.csv", ["sentence", "text"])
    assert str(e.value).startswith(
        "f.csv, column 'text': column 'text' not found; columns are: sentence, label"
    )
    require_columns(df, "f.csv", ["label"])  # present: no error


def test_text_column(tmp_path):
    df = pd.DataFrame({"t": ["a", 12, "b"]}, index=[1, 2, 3])
    assert text_column(df, "f.csv", "t") == ["a", "12", "b"]
    df = pd.DataFrame({"t": ["a", "  ", None, "d"]}, index=[1, 2, 3, 4])
    with pytest.raises(DataError) as e:
        text_column(df, "f.csv", "t")
    assert str(e.value).startswith("f.csv, row 2, column 't': empty text; 2 of 4 rows")
    assert "rows 2, 3" in str(e.value)


def test_jsonl_speed(tmp_path):
    rows = [{"sentence": f"sentence number {i} is fine", "label": i % 2} for i in range(70_000)]
    p = write_jsonl(tmp_path / "big.jsonl", rows)
    with p.open(encoding="utf-8") as f:
        tenth = [line for i, line in enumerate(f) if i % 10 == 0]
    # timed against json.loads of the lines (a tenth of them, x10), not against seconds: the
    # same verdict on a faster or slower machine (tests/speed.py)
    tables = []
    read = best_seconds(lambda: tables.append(read_table(p)), repeats=2)
    cost = read / (10 * best_seconds(lambda: [json.loads(line) for line in tenth]))
    assert len(tables[-1]) == 70_000 and tables[-1].index[-1] == 70_000
    assert cost < 10, f"read_table took {cost:.1f}x parsing the lines"  # ~1.6x measured


def test_real_sst2_validation():
    p = SHARED / "sst2" / "validation.jsonl"
    if not p.exists():
        pytest.skip(f"{p} not available")
    df = read_table(p)
    assert len(df) == 872
    assert {"sentence", "label", "label_text"} <= set(df.columns)
    assert list(df.index[:3]) == [1, 2, 3]
    assert set(df["label"]) == {0, 1}
    assert len(text_column(df, str(p), "sentence")) == 872
