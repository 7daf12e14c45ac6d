"""data.clean_markup: a run without data.prepare cleans HTML tags and entities by default
(cleaned copies of every split, the user's files untouched), and never alters clean text."""

from __future__ import annotations

import json

import pytest
from conftest import tiny_config, toy_rows, write_jsonl

from tunelab.config.load import validate_config
from tunelab.errors import ConfigError
from tunelab.runs.settings import prepared

MARKED = {  # issue 13: review text as scraped
    "It&#039;s a great film.<br /><br />Loved it": "It's a great film.\n\nLoved it",
    "dull &amp; slow": "dull & slow",
}
PLAIN = ["a plain review, no markup at all", "x < y and 3 > 2 & so on #1"]


def _files(tmp_path, marked: bool) -> dict:
    texts = [*MARKED, *PLAIN] if marked else PLAIN * 2
    rows = [{"text": t, "label": "pos" if i % 2 else "neg"} for i, t in enumerate(texts)]
    csv = tmp_path / "train.csv"  # a CSV: the cleaned copy must keep every other column
    csv.write_text("text,label,stars\n" + "".join(f'"{r["text"]}",{r["label"]},5\n' for r in rows))
    return {
        "train": csv,
        "validation": write_jsonl(tmp_path / "validation.jsonl", rows[::-1]),
        "test": write_jsonl(tmp_path / "test.jsonl", rows),
    }


def _config(files: dict, tmp_path, **data) -> object:
    raw = {
        "model": "x",
        "data": {**{k: str(v) for k, v in files.items()}, **data},
        "output": str(tmp_path / "run"),
    }
    return validate_config(raw)


def _texts(path: str) -> list[str]:
    return [json.loads(line)["text"] for line in open(path, encoding="utf-8")]


def test_auto_cleans_markup_in_every_split_and_leaves_the_files(tmp_path, capsys):
    files = _files(tmp_path, marked=True)
    before = {k: p.read_bytes() for k, p in files.items()}
    data = prepared(_config(files, tmp_path)).data
    out = capsys.readouterr().out
    assert "default data.clean_markup = True  (6 of 12 rows of train/validation/test" in out
    assert f"first {files['train']} row 1" in out
    want = [*MARKED.values(), *PLAIN]
    assert _texts(data.train) == want
    assert _texts(data.validation) == want[::-1] and _texts(data.test) == want
    assert {k: p.read_bytes() for k, p in files.items()} == before  # the user's files stay
    rows = [json.loads(line) for line in open(data.train)]
    assert [r["stars"] for r in rows] == [5] * 4 and rows[0]["label"] == "neg"
    assert data.prepare is None and data.clean_markup is False  # read as is from here on


def test_auto_without_markup_changes_nothing(tmp_path, capsys):
    files = _files(tmp_path, marked=False)
    data = prepared(_config(files, tmp_path)).data
    assert "default data.clean_markup = False  (no HTML markup" in capsys.readouterr().out
    assert (data.train, data.validation) == (str(files["train"]), str(files["validation"]))
    assert not (tmp_path / "run-prepared").exists()


def test_clean_markup_false_keeps_the_markup(tmp_path, capsys):
    files = _files(tmp_path, marked=True)
    data = prepared(_config(files, tmp_path, clean_markup=False)).data
    assert data.train == str(files["train"]) and "clean_markup" not in capsys.readouterr().out


def test_clean_markup_true_cleans_without_asking(tmp_path, capsys):
    files = _files(tmp_path, marked=True)
    data = prepared(_config(files, tmp_path, clean_markup=True)).data
    assert _texts(data.test)[:2] == list(MARKED.values())
    assert "default data.clean_markup" not in capsys.readouterr().out


def test_clean_markup_is_validated(tmp_path):
    files = _files(tmp_path, marked=True)
    with pytest.raises(ConfigError, match=r"data\.clean_markup: input should be 'auto', True"):
        _config(files, tmp_path, clean_markup="sometimes")
    with pytest.raises(ConfigError, match=r"data\.clean_markup: .*data\.prepare\.clean\.strip"):
        _config(files, tmp_path, clean_markup=False, prepare={})
    with pytest.raises(ConfigError, match=r"data\.clean_markup: .*not task 'mlm'"):
        validate_config({"model": "x", "task": "mlm", "data": {"train": "a", "clean_markup": True}})


def test_training_reads_the_cleaned_text(tiny_model, tmp_path, capsys):
    rows = toy_rows(64, seed=7)
    for r in rows[::4]:
        r["text"] = r["text"].replace(" ", "<br />", 1) + " &#039;"
    files = {
        "train": write_jsonl(tmp_path / "train.jsonl", rows[:48]),
        "validation": write_jsonl(tmp_path / "dev.jsonl", rows[48:]),
    }
    from tunelab import api

    results = api.train(tiny_config(tiny_model, files, tmp_path / "run", train={"max_steps": 2}))
    assert (
        "default data.clean_markup = True  (16 of 64 rows of train/validation "
        in capsys.readouterr().out
    )
    seen = _texts(tmp_path / "run-prepared" / "train.jsonl")
    assert results["run"]["rows"]["train"] == len(seen) == 48
    assert not any("<br />" in t or "&#039;" in t for t in seen) and any("'" in t for t in seen)
