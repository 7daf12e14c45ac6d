"""Multi-task learning: sampling proportions, a shared encoder that learns two tasks at once,
per-task models that load back and score the same, errors naming the task entry."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from conftest import toy_ner_files, toy_rows, write_jsonl

from tunelab import api
from tunelab.cli.commands import main
from tunelab.config import load_config
from tunelab.data.batching import Features
from tunelab.errors import ConfigError, ModelSourceError
from tunelab.runs.multitask import format_multitask_table
from tunelab.training.procedures import multitask as mt


def _features(sizes: list[int]) -> mt.MultitaskFeatures:
    parts = [Features(columns={"input_ids": [[1] * (2 + i % 5) for i in range(n)]}) for n in sizes]
    return mt.MultitaskFeatures([f"t{i}" for i in range(len(sizes))], parts, [None] * len(sizes))


def _share(sampling: str, sizes=(3000, 1000), temperature: float = 2.0, epochs: int = 5):
    feats = _features(list(sizes))
    order = mt.make_batch_order(feats, sampling, temperature)
    counts = np.zeros(len(sizes))
    firsts = []
    for epoch in range(epochs):
        batches = order(feats.lengths, 10, 0, epoch, True)
        assert len(batches) == sum(-(-s // 10) for s in sizes)
        tasks = [feats.task_of(int(b[0])) for b in batches]
        for b, t in zip(batches, tasks, strict=True):  # every batch comes from one task
            assert all(feats.task_of(int(i)) == t for i in b)
        counts += np.bincount(tasks, minlength=len(sizes))
        firsts.append(tasks[:6])
    return counts / counts.sum(), firsts, order, feats


def test_sampling_proportions_follow_size_temperature_round_robin():
    share, _, _, _ = _share("size")
    assert share[0] == pytest.approx(0.75, abs=0.02)
    share, _, _, _ = _share("temperature", temperature=2.0)
    expected = 3000**0.5 / (3000**0.5 + 1000**0.5)  # 0.634
    assert share[0] == pytest.approx(expected, abs=0.02)
    share, _, _, _ = _share("temperature", sizes=(3000, 1000, 100), temperature=1e6)
    assert share == pytest.approx([1 / 3] * 3, abs=0.03)  # T -> inf: uniform
    share, firsts, _, _ = _share("round_robin")
    assert share[0] == 0.5 and firsts[0] == [0, 1, 0, 1, 0, 1]


def test_batch_order_is_seeded_and_covers_each_task():
    _, _, order, feats = _share("temperature")
    a = order(feats.lengths, 10, 0, 3, True)
    b = order(feats.lengths, 10, 0, 3, True)
    c = order(feats.lengths, 10, 1, 3, True)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    # the smaller task's rows are all used before any repeats (each pool is a permutation)
    small = [b for b in a if feats.task_of(int(b[0])) == 1][:100]
    rows = np.concatenate(small)
    assert len(np.unique(rows)) == len(rows) == 1000


@pytest.fixture(scope="module")
def mt_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("mt-data")
    return {
        "cls": {
            "train": write_jsonl(root / "cls_train.jsonl", toy_rows(240, seed=1)),
            "validation": write_jsonl(root / "cls_dev.jsonl", toy_rows(60, seed=2)),
        },
        "ner": toy_ner_files(root, 200, 50, prefix="ner_"),
    }


def _mt_config(model, files, output, method="full", **procedure) -> dict:
    cls, ner = files["cls"], files["ner"]
    return {
        "model": str(model),
        "procedure": {
            "name": "multitask",
            "sampling": "temperature",
            "tasks": [
                {
                    "name": "sentiment",
                    "task": "classification",
                    "data": {"train": str(cls["train"]), "validation": str(cls["validation"])},
                },
                {
                    "name": "ner",
                    "task": "token-classification",
                    "data": {
                        "train": str(ner["train"]),
                        "validation": str(ner["validation"]),
                        "test": str(ner["test"]),
                        "text": "tokens",
                        "label": "ner_tags",
                    },
                },
            ],
            **procedure,
        },
        "method": {"name": method},
        "train": {
            "epochs": 6,
            "batch_size": 16,
            "lr": 3e-3 if method == "full" else 2e-2,
            "seed": 0,
            "log_steps": 5,
        },
        "output": str(output),
    }


@pytest.mark.parametrize("method", ["full", "lora"])
def test_shared_encoder_learns_both_tasks_and_models_load_back(
    tiny_model, mt_files, tmp_path, method
):
    from safetensors.torch import load_file

    run = tmp_path / "run"
    results = api.train(_mt_config(tiny_model, mt_files, run, method))
    tasks = results["run"]["procedure"]["tasks"]
    assert all(tasks[n]["batches"] > 20 for n in ("sentiment", "ner"))
    if method == "full":  # both losses fall and both tasks are learnt
        for name in ("sentiment", "ner"):
            assert tasks[name]["train_loss_last"] < 0.6 * tasks[name]["train_loss_first"]
        assert results["validation"]["sentiment/accuracy"] > 0.8
        assert results["validation"]["ner/f1"] > 0.8
    else:  # LoRA on a random tiny encoder learns little (tests/test_e2e.py checks a real one);
        # here: a small share trains and the update is folded into the saved shared encoder
        assert results["run"]["trainable_params"] < 0.05 * results["run"]["total_params"]
        base = load_file(tiny_model / "model.safetensors")
        saved = load_file(run / "model" / "ner" / "model.safetensors")
        key = "encoder.layer.0.attention.self.query.weight"
        assert not np.allclose(base[key].numpy(), saved["bert." + key].numpy())
    assert (run / "report.html").is_file() and (run / "model" / "multitask.json").is_file()
    table = format_multitask_table(results)
    assert "sentiment" in table and "ner" in table and "mean_primary" in table
    assert results["validation"]["mean_primary"] == pytest.approx(
        (results["validation"]["sentiment/f1_macro"] + results["validation"]["ner/f1"]) / 2
    )
    # one encoder: both saved models hold the same encoder weights, and their own heads
    a = load_file(run / "model" / "sentiment" / "model.safetensors")
    b = load_file(run / "model" / "ner" / "model.safetensors")
    shared = [k for k in a if k.startswith("bert.encoder.") or k.startswith("bert.embeddings.")]
    assert shared and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in shared)
    assert a["classifier.weight"].shape[0] == 2 and b["classifier.weight"].shape[0] == 3
    # each task's folder loads on its own and scores what the run scored in memory
    again = api.evaluate(run / "model" / "ner", mt_files["ner"]["test"])["test"]
    assert again["f1"] == pytest.approx(results["tasks"]["ner"]["test"]["f1"])
    assert again["loss"] == pytest.approx(results["tasks"]["ner"]["test"]["loss"], rel=1e-4)
    again = api.evaluate(run / "model" / "sentiment", mt_files["cls"]["validation"])["test"]
    assert again["accuracy"] == pytest.approx(
        results["tasks"]["sentiment"]["validation"]["accuracy"]
    )
    from transformers import pipeline  # a plain HF folder: no tunelab needed to use it

    clf = pipeline("text-classification", model=str(run / "model" / "sentiment"), device="cpu")
    assert clf("a great fun film")[0]["label"] in ("negative", "positive")
    with pytest.raises(ModelSourceError, match="one model per task; pick one"):
        api.predict(run, ["alice went to paris"])
    pred = api.predict(run / "model" / "ner", ["alice went to paris"])[0]
    if method == "full":
        assert [(e["type"], e["text"]) for e in pred["entities"]] == [
            ("PER", "alice"),
            ("LOC", "paris"),
        ]


def test_bad_task_data_names_the_entry_and_key(tiny_model, mt_files, tmp_path, capsys):
    cfg = _mt_config(tiny_model, mt_files, tmp_path / "run")
    del cfg["procedure"]["tasks"][1]["data"]["train"]
    with pytest.raises(ConfigError, match=r"procedure\.tasks\.1\.data\.train: required key"):
        api.train(cfg)
    cfg = _mt_config(tiny_model, mt_files, tmp_path / "run")
    cfg["procedure"]["tasks"][0]["data"]["max_lenght"] = 64
    with pytest.raises(ConfigError, match=r"procedure\.tasks\.0\.data\.max_lenght: unknown key"):
        api.train(cfg)
    cfg = _mt_config(tiny_model, mt_files, tmp_path / "run")
    cfg["procedure"]["tasks"][1]["data"]["text_pair"] = "other"
    with pytest.raises(ConfigError, match=r"procedure\.tasks\.1\.data\.text_pair"):
        api.train(cfg)
    cfg = _mt_config(tiny_model, mt_files, tmp_path / "run")
    cfg["procedure"]["tasks"][1]["name"] = "sentiment"
    with pytest.raises(ConfigError, match=r"procedure\.tasks\.1\.name"):
        api.train(cfg)
    cfg = _mt_config(tiny_model, mt_files, tmp_path / "run")  # the CLI: exit status, one line
    del cfg["procedure"]["tasks"][0]["data"]["train"]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(tmp_path / "bad.yaml")]) != 0
    assert "procedure.tasks.0.data.train: required key" in capsys.readouterr().err
    cfg = _mt_config(tiny_model, mt_files, tmp_path / "run")  # a wrong column: the file's error
    cfg["procedure"]["tasks"][0]["data"]["text"] = "review"
    with pytest.raises(Exception, match=r"cls_train\.jsonl.*review"):
        api.train(cfg)
    assert not (tmp_path / "run" / "model").exists()


def test_example_config_validates():
    from conftest import REPO

    cfg = load_config(REPO / "examples" / "multitask.yaml")
    assert [e.name for e in cfg.procedure.tasks] == ["sst2", "rte", "conll"]
