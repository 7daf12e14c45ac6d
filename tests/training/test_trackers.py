"""train.trackers: a tiny run logged to a real local `mlflow server`, to W&B offline files and
to TensorBoard at once, read back with each tool's own client; and the missing-extra error."""

from __future__ import annotations

import os
import signal
import struct
from pathlib import Path

import mlflow_local
import pytest
from conftest import tiny_config

from tunelab import api
from tunelab.errors import ConfigError
from tunelab.training import trackers
from tunelab.training.loggers import read_metrics

pytest.importorskip("mlflow")
pytest.importorskip("wandb")

STEPS = list(range(5, 61, 5))  # 3 epochs of 20 steps, logged every 5
QUIET = mlflow_local.QUIET
mlflow_server = mlflow_local.mlflow_server  # the fixture: a real local `mlflow server`


def _wandb_records(path: Path):
    """The protobuf records of a `.wandb` file: a LevelDB-style log (32 KiB blocks, each
    chunk a 7-byte header: crc32, length, type FULL=1/FIRST=2/MIDDLE=3/LAST=4) after the
    7-byte `:W&B` header. wandb has no Python reader for it any more (wandb-core writes it)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, block = path.read_bytes(), 32 * 1024
    assert data[:4] == b":W&B"
    pos, buf = 7, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # the block's tail is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0:
            break
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        buf = chunk if kind in (1, 2) else buf + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(buf)
            yield record
            buf = b""


@pytest.mark.e2e  # about a minute: most of it is `mlflow server` starting
def test_one_run_logs_to_tensorboard_mlflow_and_wandb(
    tiny_model, toy_data, tmp_path, mlflow_server, monkeypatch
):
    import json

    from mlflow.tracking import MlflowClient

    for key, value in QUIET.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline is the default
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "unset")  # so that teardown removes it again
    monkeypatch.delenv("WANDB_ERROR_REPORTING")
    run_dir = tmp_path / "run"
    train = {"log_steps": 5}
    train |= {"trackers": ["tensorboard", "mlflow", "wandb"], "mlflow_uri": mlflow_server}
    train |= {"mlflow_experiment": "tracked", "wandb_project": "tiny"}
    results = api.train(tiny_config(tiny_model, toy_data, run_dir, train=train))
    logged = [r for r in read_metrics(run_dir) if r["split"] == "train"]
    assert [r["step"] for r in logged] == STEPS
    assert any((run_dir / "tensorboard").iterdir())
    # offline means no network: wandb's error reporting would probe its cloud otherwise
    assert os.environ["WANDB_ERROR_REPORTING"] == "false"

    # MLflow: the run on the server, with the resolved config as params and every step's loss
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("tracked")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.params["task"] == "classification"
    assert float(run.data.params["train.lr"]) == 2e-3
    assert run.data.params["train.log_steps"] == "5"
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert [m.step for m in history] == STEPS
    assert [m.value for m in history] == pytest.approx([r["loss"] for r in logged])
    losses = [m.value for m in history]
    assert sum(losses[-3:]) < 0.9 * sum(losses[:3])  # the loss falls across steps
    validation = client.get_metric_history(run.info.run_id, "validation/loss")
    assert [m.step for m in validation] == [20, 40, 60]  # once per epoch
    final = run.data.metrics["final/test/accuracy"]
    assert final == pytest.approx(results["test"]["accuracy"])

    # W&B: the offline run folder under the run dir, its history and config read back
    (folder,) = (run_dir / "wandb").glob("offline-run-*")
    (log_file,) = folder.glob("run-*.wandb")
    history, config, summary = [], {}, {}
    for record in _wandb_records(log_file):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            items = {"/".join(i.nested_key) or i.key: i.value_json for i in record.history.item}
            if "train/loss" in items:
                history.append((record.history.step.num, json.loads(items["train/loss"])))
        elif kind == "run":
            config = {i.key: json.loads(i.value_json) for i in record.run.config.update}
        elif kind == "summary":
            for i in record.summary.update:
                summary["/".join(i.nested_key) or i.key] = i.value_json
    assert [s for s, _ in history] == STEPS
    assert [v for _, v in history] == pytest.approx([r["loss"] for r in logged])
    assert config["train"]["lr"] == 2e-3 and config["task"] == "classification"
    assert json.loads(summary["final/test/accuracy"]) == pytest.approx(results["test"]["accuracy"])


def test_ctrl_c_then_resume_continues_the_same_mlflow_run(
    tiny_model, toy_data, tmp_path, monkeypatch
):
    """The default store (sqlite under the run dir): an interrupted run is marked FAILED, and
    --resume logs the remaining steps into that same run, which then ends FINISHED."""
    from mlflow.tracking import MlflowClient

    from tunelab.errors import Interrupted
    from tunelab.training.loggers import MetricsLogger

    for key, value in QUIET.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_dir = tmp_path / "run"
    train = {"max_steps": 10, "log_steps": 2, "eval_steps": 5, "trackers": ["mlflow"]}
    cfg = tiny_config(tiny_model, toy_data, run_dir, train=train)
    original = MetricsLogger.log

    def log(self, record: dict) -> None:  # Ctrl-C as the third train record is written
        original(self, record)
        if record["split"] == "train" and record["step"] == 6:
            os.kill(os.getpid(), signal.SIGINT)

    with monkeypatch.context() as patch, pytest.raises(Interrupted):
        patch.setattr(MetricsLogger, "log", log)
        api.train(cfg)
    client = MlflowClient(f"sqlite:///{run_dir / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("tunelab").experiment_id])
    assert run.info.status == "FAILED"
    assert not (run_dir / "tensorboard").exists()  # not in train.trackers

    api.train(cfg, resume=True)
    (again,) = client.search_runs([run.info.experiment_id])
    assert again.info.run_id == run.info.run_id and again.info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
    assert steps[-2:] == [8, 10] and set(steps) == {2, 4, 6, 8, 10}
    assert "final/test/accuracy" in again.data.metrics


def test_a_tracker_not_installed_is_a_config_error_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setitem(trackers.EXTRAS, "mlflow", ("tunelab_no_such_module", "mlflow"))
    cfg = tiny_config(
        tmp_path / "no-model-here",  # nothing is loaded: the check comes first
        {"train": tmp_path / "no-train.jsonl", "validation": tmp_path / "no-dev.jsonl"},
        tmp_path / "run",
        train={"trackers": ["tensorboard", "mlflow"]},
    )
    with pytest.raises(ConfigError) as error:
        api.train(cfg)
    assert str(error.value).startswith("train.trackers: 'mlflow' is not installed")
    assert "pip install 'tunelab[mlflow]'" in str(error.value)
    assert not (tmp_path / "run").exists()


def test_without_tensorboard_in_trackers_no_events_are_written_and_the_sink_gets_each_record(
    tmp_path,
):
    from tunelab.training.loggers import MetricsLogger

    class Sink:
        def __init__(self):
            self.records = []

        def log(self, record: dict) -> None:
            self.records.append(record)

    sink = Sink()
    logger = MetricsLogger(tmp_path, tensorboard=False, sink=sink)
    record = {"step": 1, "epoch": 0.1, "split": "train", "loss": 0.5}
    logger.log(record)
    logger.close()
    assert sink.records == [record] and read_metrics(tmp_path) == [record]
    assert not (tmp_path / "tensorboard").exists()
