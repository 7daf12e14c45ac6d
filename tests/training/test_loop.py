"""The training loop: loss falls, exact resume after Ctrl-C, early stopping with best restore,
gradient accumulation, class weights."""

from __future__ import annotations

import json
import os
import signal

import pytest
from conftest import tiny_config, toy_rows, write_jsonl

from tunelab import api
from tunelab.errors import Interrupted
from tunelab.training.loggers import MetricsLogger, read_metrics


def _train_losses(run_dir) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in read_metrics(run_dir) if r["split"] == "train"]


def test_loss_falls_and_beats_majority(tiny_model, toy_data, tmp_path):
    cfg = tiny_config(tiny_model, toy_data, tmp_path / "run", eval={"baselines": ["majority"]})
    results = api.train(cfg)
    losses = [loss for _, loss in _train_losses(tmp_path / "run")]
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
    assert results["test"]["accuracy"] > results["baselines"]["majority"]["test"]["accuracy"] + 0.2


def _interrupt_at(monkeypatch, n_records: int) -> None:
    """Send Ctrl-C (SIGINT) to this process from inside the loop as it writes the
    `n_records`-th line of metrics.jsonl, so the run stops at the same step on any machine
    (a watcher thread polling the file raced the loop: a fast machine could finish first)."""
    original = MetricsLogger.log

    def log(self, record: dict) -> None:
        original(self, record)
        self.lines_written = getattr(self, "lines_written", 0) + 1
        if self.lines_written == n_records:
            os.kill(os.getpid(), signal.SIGINT)  # handled in the main thread, which trains

    monkeypatch.setattr(MetricsLogger, "log", log)


def test_ctrl_c_checkpoints_and_resume_is_exact(tiny_model, toy_data, tmp_path, monkeypatch):
    """An interrupted-then-resumed run logs the same losses as one that never stopped."""
    train = {"epochs": 4, "batch_size": 8, "lr": 1e-3, "eval_steps": 25, "log_steps": 1}
    straight = tiny_config(tiny_model, toy_data, tmp_path / "straight", train=train)
    api.train(straight)

    cfg = tiny_config(tiny_model, toy_data, tmp_path / "stopped", train=train)
    with monkeypatch.context() as patch, pytest.raises(Interrupted, match="--resume"):
        _interrupt_at(patch, 12)
        api.train(cfg)
    run = tmp_path / "stopped"
    assert not (run / "model").exists(), "an interrupted run must not leave a model behind"
    checkpoints = sorted((run / "checkpoints").glob("step-*"))
    assert checkpoints, "Ctrl-C must leave a checkpoint"
    stopped_at = int(checkpoints[-1].name.split("-")[1])
    assert 0 < stopped_at < 160

    api.train(cfg, resume=True)
    a, b = _train_losses(tmp_path / "straight"), _train_losses(run)
    assert [s for s, _ in a] == [s for s, _ in b]
    assert [loss for _, loss in a] == pytest.approx([loss for _, loss in b], rel=1e-5, abs=1e-6)
    va = [r["loss"] for r in read_metrics(tmp_path / "straight") if r["split"] == "validation"]
    vb = [r["loss"] for r in read_metrics(run) if r["split"] == "validation"]
    assert va == pytest.approx(vb, rel=1e-5)
    assert (run / "model" / "model.safetensors").is_file()


def test_early_stopping_restores_best(tiny_model, toy_data, tmp_path):
    # A learning rate this high makes validation F1 peak and then wobble: patience 2 stops it.
    cfg = tiny_config(
        tiny_model,
        toy_data,
        tmp_path / "run",
        train={"epochs": 30, "lr": 5e-3, "eval_steps": 5, "early_stopping": {"patience": 2}},
    )
    results = api.train(cfg)
    run = results["run"]
    assert run["stopped_early"] and run["steps"] < 30 * 20
    evals = [r for r in read_metrics(tmp_path / "run") if r["split"] == "validation"]
    best = max(r["f1_macro"] for r in evals)
    assert run["best"]["value"] == pytest.approx(best)
    # the saved model is the best one, not the last one
    assert results["validation"]["f1_macro"] == pytest.approx(best, abs=1e-9)


def test_gradient_accumulation_counts_optimizer_steps(tiny_model, toy_data, tmp_path):
    cfg = tiny_config(
        tiny_model,
        toy_data,
        tmp_path / "run",
        train={"epochs": 1, "batch_size": 8, "grad_accum": 4},
    )
    results = api.train(cfg)
    assert results["run"]["steps"] == 10  # 320 rows / 8 = 40 micro-batches / 4
    assert results["timing"]["train_samples"] == 320


def test_class_weights_for_skewed_labels(tiny_model, tmp_path):
    data = {
        "train": write_jsonl(tmp_path / "train.jsonl", toy_rows(300, seed=4, imbalance=0.12)),
        "validation": write_jsonl(tmp_path / "dev.jsonl", toy_rows(100, seed=5, imbalance=0.12)),
    }
    cfg = tiny_config(
        tiny_model, data, tmp_path / "run", eval={"baselines": ["majority"]}, train={"epochs": 6}
    )
    results = api.train(cfg)
    weights = results["run"]["class_weights"]
    assert (
        weights is not None and weights[1] > 3 * weights[0]
    )  # the rare "positive" class weighs more
    assert (
        results["validation"]["f1_macro"]
        > results["baselines"]["majority"]["validation"]["f1_macro"] + 0.3
    )


def test_metrics_jsonl_and_config_yaml(tiny_model, toy_data, tmp_path):
    cfg = tiny_config(
        tiny_model, toy_data, tmp_path / "run", train={"max_steps": 6, "log_steps": 2, "lr": None}
    )
    api.train(cfg)
    records = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    train = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train] == [2, 4, 6]
    assert all({"loss", "lr", "samples_per_s", "epoch"} <= set(r) for r in train)
    import yaml

    written = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert written["train"]["lr"] == 5e-5  # the default for full fine-tuning, written out
    assert written["data"]["max_length"] >= 16
    assert {"tunelab", "torch", "transformers"} <= set(written["versions"])
