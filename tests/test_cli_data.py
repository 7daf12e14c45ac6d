"""`tunelab data inspect|prepare|preview` as a user runs them."""

from __future__ import annotations

import json
import random

import pytest
import yaml
from conftest import SHARED_DATASETS, write_jsonl

from tunelab.cli.commands import main

SST2 = SHARED_DATASETS / "sst2" / "train.jsonl"


@pytest.fixture
def sst2_sample(tmp_path):
    if not SST2.is_file():
        pytest.skip("../shared/datasets is not beside the repo")
    lines = random.Random(0).sample(SST2.read_text().splitlines(), 400)
    rows = [
        {"sentence": r["sentence"], "label": r["label_text"], "source": "ab"[i % 2]}
        for i, r in enumerate(map(json.loads, lines))
    ]
    rows += rows[:10]  # 10 exact duplicates
    return write_jsonl(tmp_path / "raw.jsonl", rows)


def test_inspect_json_and_html(sst2_sample, tmp_path, capsys):
    out = tmp_path / "report"
    assert (
        main(
            [
                "data",
                "inspect",
                str(sst2_sample),
                "--text",
                "sentence",
                "--label",
                "label",
                "--group",
                "source",
                "--out",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 410 and report["duplicates"]["exact_rows"] >= 10
    assert set(report["labels"]["counts"]) == {"negative", "positive"}
    assert "bias" in report["groups"]
    assert (out / "report.html").read_text().count("data:image/png;base64,") >= 2


def test_inspect_bad_column_is_one_line(sst2_sample, tmp_path, capsys):
    code = main(
        [
            "data",
            "inspect",
            str(sst2_sample),
            "--text",
            "sentence",
            "--group",
            "region",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        code == 2
        and len(err) == 1
        and err[0].startswith("error:")
        and "region" in err[0]
        and "raw.jsonl" in err[0]
    )


def _config(tmp_path, data_file, **prepare) -> str:
    cfg = {
        "model": "all-minilm-l6-v2",
        "data": {
            "train": str(data_file),
            "text": "sentence",
            "label": "label",
            "prepare": {"split": {"ratios": {"train": 0.8, "test": 0.2}}, **prepare},
        },
        "output": str(tmp_path / "run"),
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_prepare_cli_writes_splits_folds_and_reuses_them(sst2_sample, tmp_path, capsys):
    cfg = _config(
        tmp_path,
        sst2_sample,
        split={"ratios": {"train": 0.8, "test": 0.2}, "folds": 3},
        augment={"multiplier": 0.5, "methods": ["delete", "swap"]},
    )
    assert main(["data", "prepare", cfg]) == 0
    out = tmp_path / "run-prepared"
    train = (out / "train.jsonl").read_text().splitlines()
    test = (out / "test.jsonl").read_text().splitlines()
    report = json.loads((out / "report.json").read_text())
    kept = (
        report["prepare"]["splits"]["test"]["rows"]
        + next(s for s in report["prepare"]["steps"] if s["step"] == "split")["train"]
    )
    assert len(test) == report["prepare"]["splits"]["test"]["rows"] and kept <= 400
    augment = next(s for s in report["prepare"]["steps"] if s["step"] == "augment")
    assert len(train) == augment["rows_out"]
    # 0.5 new rows per row; an edit that leaves a one-word row unchanged is dropped, not kept
    assert 1.4 * augment["rows_in"] <= len(train) <= 1.5 * augment["rows_in"] + 1
    assert sorted(p.name for p in out.glob("fold-*")) == ["fold-0", "fold-1", "fold-2"]
    capsys.readouterr()
    assert main(["data", "prepare", cfg]) == 0
    assert "reusing" in capsys.readouterr().out


def test_prepare_cli_bad_ratios(sst2_sample, tmp_path, capsys):
    cfg = _config(tmp_path, sst2_sample, split={"ratios": {"train": 0.7, "test": 0.2}})
    assert main(["data", "prepare", cfg]) == 2
    err = capsys.readouterr().err
    assert "data.prepare.split" in err and "sum to 1" in err
    assert not (tmp_path / "run-prepared").exists()


def test_preview_shows_tokens(tmp_path, capsys):
    data = write_jsonl(
        tmp_path / "d.jsonl",
        [
            {"sentence": "a gripping film", "label": "positive"},
            {"sentence": "dull and slow", "label": "negative"},
        ]
        * 3,
    )
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "model": "all-minilm-l6-v2",
                "data": {
                    "train": str(data),
                    "validation": str(data),
                    "text": "sentence",
                    "label": "label",
                    "max_length": 4,
                },
                "output": str(tmp_path / "o"),
            }
        )
    )
    assert main(["data", "preview", str(cfg), "-n", "2", "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert rows[0]["tokens"] == ["[CLS]", "a", "gripping", "[SEP]"] and rows[0]["truncated"]
    assert rows[0]["label"] == "positive"


def test_preview_marks_trained_tokens_for_chat_sft(tmp_path, capsys):
    from conftest import REPO

    data = REPO / "examples" / "data" / "instructions" / "validation.jsonl"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "model": "smollm2-135m-instruct",
                "task": "causal-lm",
                "data": {"train": str(data), "validation": str(data)},
                "output": str(tmp_path / "o"),
            }
        )
    )
    assert main(["data", "preview", str(cfg), "-n", "2", "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    first = json.loads(data.read_text().splitlines()[0])
    text = rows[0]["rendered"]
    # the answer and its end-of-turn token are trained; the instruction is not
    assert f"«{first['output']}<|im_end|>»" in text
    assert first["instruction"] in text.split("«")[0]
    assert rows[0]["trained_tokens"] < rows[0]["n_tokens"]
