"""k-fold cross-validation (`train.folds`) on a tiny model and toy data: k runs whose
validation folds partition the training rows (stratified), a test file scored by every
fold's model, and mean/std that are the per-fold numbers' mean and sample std."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_config, toy_rows, write_jsonl

from tunelab import api
from tunelab.errors import ConfigError

K, ROWS = 3, 90


@pytest.fixture(scope="module")
def kfold(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("kfold")
    rows = toy_rows(ROWS, seed=7, imbalance=0.3)  # 30% positive: stratification shows
    for i, r in enumerate(rows):
        r["text"] = f"{r['text']} {i}"  # unique texts, to find each row in the fold files
    files = {
        "train": write_jsonl(root / "train.jsonl", rows),
        "validation": "none",  # removed below: folds replace it
        "test": write_jsonl(root / "test.jsonl", toy_rows(30, seed=8)),
    }
    cfg = tiny_config(tiny_model, files, root / "cv", train={"folds": K, "max_steps": 6})
    del cfg["data"]["validation"]
    return root / "cv", rows, api.train(cfg)


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_k_runs_each_validated_on_its_fold(kfold):
    out, rows, summary = kfold
    assert summary["folds"] == K and len(summary["per_fold"]) == K and summary["rows"] == ROWS
    for f in summary["per_fold"]:
        run = out / f"fold-{f['fold']}"
        results = json.loads((run / "results.json").read_text())
        assert (run / "model" / "config.json").is_file()
        assert results["run"]["rows"]["validation"] == f["rows"]["validation"]
        assert results["run"]["rows"]["train"] == f["rows"]["train"]
        assert f["validation"]["f1_macro"] == results["validation"]["f1_macro"]
        # the test file is scored by every fold's model
        assert results["run"]["rows"]["test"] == 30
        assert f["test"]["accuracy"] == results["test"]["accuracy"]
    assert json.loads((out / "folds.json").read_text()) == json.loads(json.dumps(summary))


def test_folds_partition_the_training_rows(kfold):
    out, rows, _ = kfold
    seen: list[int] = []
    for i in range(K):
        folder = out / "data" / f"fold-{i}"
        split = json.loads((folder / "rows.json").read_text())
        train, val = set(split["train"]), set(split["validation"])
        assert not train & val and train | val == set(range(ROWS))
        # the files hold exactly those rows
        assert [r["text"] for r in _read(folder / "validation.jsonl")] == [
            rows[j]["text"] for j in sorted(val)
        ]
        assert [r["text"] for r in _read(folder / "train.jsonl")] == [
            rows[j]["text"] for j in sorted(train)
        ]
        # stratified: each fold has the training set's 30/70 label mix (within a row)
        counts = Counter(rows[j]["label"] for j in val)
        total = Counter(r["label"] for r in rows)
        assert abs(counts["positive"] - total["positive"] / K) <= 1
        seen += sorted(val)
    assert sorted(seen) == list(range(ROWS))  # every row validated exactly once


def test_mean_and_std_of_every_numeric_metric(kfold):
    _, _, summary = kfold
    for split in ("validation", "test"):
        stats = summary[split]
        assert {"accuracy", "f1_macro", "loss"} <= set(stats["mean"])
        for metric, mean in stats["mean"].items():
            values = np.array([f[split][metric] for f in summary["per_fold"]])
            assert mean == pytest.approx(values.mean())
            assert stats["std"][metric] == pytest.approx(values.std(ddof=1))


def test_cli_prints_the_fold_table(kfold, capsys):
    from tunelab.runs.kfold import format_folds_table

    _, _, summary = kfold
    table = format_folds_table(summary)
    assert "fold-0" in table and "mean ± std" in table
    acc = summary["validation"]["mean"]["accuracy"]
    assert f"{acc:.4f} ± {summary['validation']['std']['accuracy']:.4f}" in table


def test_validation_file_with_folds_is_a_config_error(tiny_model, toy_data, tmp_path):
    cfg = tiny_config(tiny_model, toy_data, tmp_path / "cv", train={"folds": 3})
    with pytest.raises(ConfigError, match=r"^train\.folds: folds replace the validation split"):
        api.train(cfg)
    assert not (tmp_path / "cv").exists()


def test_more_folds_than_rows_is_a_config_error(tiny_model, tmp_path):
    files = {"train": write_jsonl(tmp_path / "t.jsonl", toy_rows(4)), "validation": "none"}
    cfg = tiny_config(tiny_model, files, tmp_path / "cv", train={"folds": 5})
    del cfg["data"]["validation"]
    with pytest.raises(ConfigError, match=r"^train\.folds: k-fold needs 2 <= k <= 4 rows"):
        api.train(cfg)
