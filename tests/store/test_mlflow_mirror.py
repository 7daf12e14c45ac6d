"""store/mlflow_mirror.py against MLflow's own sqlite store (no server: seconds, not a
minute; the real `mlflow server` is in tests/cli/test_cli_registry_mlflow.py): what a version
becomes in MLflow, that mirroring twice makes nothing new, that a half-written run is made
again, and that an unreachable server is a one-line MirrorError at once."""

from __future__ import annotations

import math
import time

import mlflow_local
import pytest
from mirror_runs import make_scored_run

from tunelab.store import mlflow_mirror
from tunelab.store.db import open_db
from tunelab.store.registry import add_version, promote, tag

pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """One MLflow sqlite store for the module (creating one takes seconds); each test uses
    its own model name."""
    import os

    for key, value in mlflow_local.QUIET.items():
        os.environ.setdefault(key, value)
    root = tmp_path_factory.mktemp("mlflow-store")
    return f"sqlite:///{root / 'mlflow.db'}"


@pytest.fixture
def engine(tmp_path):
    engine = open_db(f"sqlite:///{tmp_path / 'reg.db'}")
    yield engine
    engine.dispose()


def _client(uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


def test_flattening_params_metrics_and_tags():
    assert mlflow_mirror.params_of({"train": {"lr": 0.002, "steps": [1, 2]}, "task": "c"}) == {
        "train.lr": "0.002",
        "train.steps": "[1, 2]",
        "task": "c",
    }
    metrics = mlflow_mirror.metrics_of(
        {"schema_version": 1, "test": {"accuracy": 0.9, "loss": math.nan, "ok": True}}
    )
    assert metrics == {"test.accuracy": 0.9}  # no NaN, no bools, no schema_version
    v = {
        "name": "clf",
        "version": 3,
        "path": "/runs/x",
        "kind": "run",
        "created": 1.0,
        "parent_version": 2,
        "lineage": {"model_fingerprint": "abc", "data": {"data.train": {"sha256": "f00"}}},
        "tags": {"reviewed_by": "ana", "mlflow.user": "eve"},
    }
    tags = mlflow_mirror.tags_of(v)
    assert tags["tunelab.registry.version"] == "3" and tags["tunelab.parent_version"] == "2"
    assert tags["tunelab.lineage.model_fingerprint"] == "abc"
    assert tags["tunelab.lineage.data.train.sha256"] == "f00"
    assert tags["reviewed_by"] == "ana" and tags["tunelab.tag.mlflow.user"] == "eve"
    assert "mlflow.user" not in tags  # MLflow's own tags are not overwritten


def test_a_second_mirror_makes_nothing_new_and_updates_tags(engine, tracking, tmp_path):
    first = add_version(engine, "idem", make_scored_run(tmp_path, "a", 0.8), alias="champion")
    add_version(engine, "idem", make_scored_run(tmp_path, "b", 0.9))
    report = mlflow_mirror.mirror(engine, tracking, "idem")
    assert report["created"] == [1, 2] and report["aliases"]["champion"]["version"] == 1
    client = _client(tracking)
    (by_tag,) = [
        mv
        for mv in client.search_model_versions("name = 'idem'")
        if mv.tags["tunelab.registry.version"] == "1"
    ]
    run = client.get_run(by_tag.run_id)
    assert run.data.metrics["test.accuracy"] == first["results"]["test"]["accuracy"]
    assert "test.loss" not in run.data.metrics  # NaN in results.json
    assert run.data.params["model"] == "base-model"

    tag(engine, "idem", 1, "reviewed_by", "ana")
    promote(engine, "idem", 2)
    again = mlflow_mirror.mirror(engine, tracking, "idem")
    assert again["created"] == [] and again["versions"] == report["versions"]
    assert len(client.search_model_versions("name = 'idem'")) == 2
    experiment = client.get_experiment_by_name("tunelab-registry/idem").experiment_id
    assert len(client.search_runs([experiment])) == 2
    assert client.get_model_version("idem", by_tag.version).tags["reviewed_by"] == "ana"
    assert client.get_run(by_tag.run_id).data.tags["reviewed_by"] == "ana"
    champion = client.get_model_version_by_alias("idem", "champion")
    assert champion.tags["tunelab.registry.version"] == "2"


def test_a_half_written_run_is_made_again(engine, tracking, tmp_path):
    add_version(engine, "half", make_scored_run(tmp_path, "a", 0.8))
    client = _client(tracking)
    experiment = client.create_experiment("tunelab-registry/half")
    tags = {"tunelab.registry.name": "half", "tunelab.registry.version": "1"}
    broken = client.create_run(experiment, tags=tags).info.run_id  # no params, not complete
    report = mlflow_mirror.mirror(engine, tracking, "half")
    (run,) = client.search_runs([experiment])
    assert run.info.run_id != broken and run.data.metrics["test.accuracy"] == 0.8
    mv = client.get_model_version("half", report["versions"][1])
    assert mv.run_id == run.info.run_id


def test_an_unreachable_server_fails_at_once_with_one_line(engine, tmp_path):
    add_version(engine, "down", make_scored_run(tmp_path, "a", 0.8))
    url = f"http://user:secret@127.0.0.1:{mlflow_local.free_port()}"
    started = time.monotonic()
    with pytest.raises(mlflow_mirror.MirrorError) as failed:
        mlflow_mirror.mirror(engine, url, "down")
    assert time.monotonic() - started < 15
    text = str(failed.value)
    assert "cannot reach the server" in text and "secret" not in text and "\n" not in text
    assert failed.value.exit_code == 5


def test_a_uri_that_is_no_tracking_uri_is_refused():
    from tunelab.errors import ConfigError

    with pytest.raises(ConfigError, match="--mlflow"):
        mlflow_mirror.check_uri("mlflow.example.com")


def test_a_deleted_experiment_is_restored_and_used_again(engine, tracking, tmp_path):
    add_version(engine, "gone", make_scored_run(tmp_path, "a", 0.7))
    mlflow_mirror.mirror(engine, tracking, "gone")
    client = _client(tracking)
    experiment = client.get_experiment_by_name("tunelab-registry/gone")
    client.delete_experiment(experiment.experiment_id)
    add_version(engine, "gone", make_scored_run(tmp_path, "b", 0.8))
    report = mlflow_mirror.mirror(engine, tracking, "gone")
    assert report["created"] == [2]
    assert client.get_experiment(experiment.experiment_id).lifecycle_stage == "active"
    assert len(client.search_runs([experiment.experiment_id])) == 2
