"""`tunelab registry ... --mlflow URI` against a real local `mlflow server`: versions, their
metrics and the champion alias show up in MLflow's registry and follow promote and rollback; a
full `registry mirror` makes nothing twice; and with the server down the registry change is
still made, exit 5, with one line on stderr that names the re-sync command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
import mlflow_local  # noqa: E402
from mirror_runs import make_scored_run  # noqa: E402

from tunelab.cli.commands import main  # noqa: E402

pytest.importorskip("mlflow")
mlflow_server = mlflow_local.mlflow_server  # the fixture: a real local `mlflow server`


def registry(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["registry", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _by_tunelab_version(client, name: str) -> dict[str, object]:
    """MLflow's versions of `name`, keyed by the tunelab version they mirror."""
    versions = client.search_model_versions(f"name = '{name}'")
    keyed = {mv.tags["tunelab.registry.version"]: mv for mv in versions}
    assert len(keyed) == len(versions)  # one MLflow version per tunelab version
    return keyed


@pytest.mark.e2e  # about a minute: most of it is `mlflow server` starting
def test_add_promote_rollback_and_mirror_follow_in_mlflow(
    mlflow_server, tmp_path, capsys, monkeypatch
):
    from mlflow.tracking import MlflowClient

    for key, value in mlflow_local.QUIET.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("TUNELAB_MLFLOW", raising=False)
    db = f"sqlite:///{tmp_path / 'reg.db'}"
    first, second = make_scored_run(tmp_path, "a", 0.8), make_scored_run(tmp_path, "b", 0.9)
    ml = ("--db", db, "--mlflow", mlflow_server)

    code, out, err = registry(capsys, "add", "clf", str(first), "--alias", "champion", *ml)
    assert code == 0, err
    assert "clf: mirrored to MLflow http://127.0.0.1:" in out and "champion -> 1" in out
    monkeypatch.setenv("TUNELAB_MLFLOW", mlflow_server)  # the default for --mlflow
    code, out, err = registry(capsys, "add", "clf", str(second), "--db", db, "--json")
    assert code == 0, err
    added = json.loads(out)
    assert added["version"] == 2 and added["mlflow"]["created"] == [2]
    code, out, err = registry(capsys, "promote", "clf", "2", *ml)
    assert code == 0, err

    client = MlflowClient(mlflow_server)
    versions = _by_tunelab_version(client, "clf")
    assert sorted(versions) == ["1", "2"]
    champion = client.get_model_version_by_alias("clf", "champion")
    assert champion.version == versions["2"].version
    assert champion.tags["tunelab.path"] == str(second.resolve())
    run = client.get_run(champion.run_id)
    results = json.loads((second / "results.json").read_text())
    for split in ("validation", "test"):
        for metric in ("accuracy", "loss"):
            if results[split][metric] == results[split][metric]:  # not NaN
                assert run.data.metrics[f"{split}.{metric}"] == results[split][metric]
    assert "test.loss" not in run.data.metrics  # NaN is no metric
    assert run.data.params["data.train"].endswith("b-train.jsonl")
    assert run.data.tags["tunelab.registry.version"] == "2"
    assert run.data.tags["tunelab.lineage.model_fingerprint"]

    code, out, err = registry(capsys, "rollback", "clf", *ml)
    assert code == 0, err
    assert client.get_model_version_by_alias("clf", "champion").version == versions["1"].version
    code, out, err = registry(capsys, "tag", "clf", "1", "reviewed_by=ana", *ml)
    assert code == 0, err
    assert client.get_model_version("clf", versions["1"].version).tags["reviewed_by"] == "ana"

    code, out, err = registry(capsys, "mirror", "clf", *ml, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["created"] == [] and report["aliases"]["champion"]["version"] == 1
    assert _by_tunelab_version(client, "clf").keys() == versions.keys()  # no duplicates
    experiment = client.get_experiment_by_name("tunelab-registry/clf").experiment_id
    assert len(client.search_runs([experiment])) == 2


def test_with_mlflow_down_the_registry_is_changed_and_exit_5_names_the_resync(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("TUNELAB_MLFLOW", raising=False)
    db = f"sqlite:///{tmp_path / 'reg.db'}"
    down = f"http://127.0.0.1:{mlflow_local.free_port()}"  # nothing listens there
    first, second = make_scored_run(tmp_path, "a", 0.8), make_scored_run(tmp_path, "b", 0.9)
    assert registry(capsys, "add", "clf", str(first), "--alias", "champion", "--db", db)[0] == 0

    code, out, err = registry(capsys, "add", "clf", str(second), "--db", db, "--mlflow", down)
    assert code == 5
    assert out.startswith("clf: version 2 added")  # done, and said so on stdout
    (line,) = err.strip().splitlines()
    assert "done in the registry database, but not mirrored" in line
    assert "cannot reach the server" in line
    assert line.endswith(f"Re-sync with: tunelab registry mirror clf --mlflow {down} --db {db}")

    code, out, err = registry(capsys, "promote", "clf", "2", "--db", db, "--mlflow", down, "--json")
    assert code == 5 and "Re-sync with" in err
    moved = json.loads(out)
    assert moved["version"] == 2 and "cannot reach" in moved["mlflow"]["error"]
    shown = json.loads(registry(capsys, "show", "clf", "--db", db, "--json")[1])
    assert shown["version"] == 2 and shown["aliases"] == ["champion"]  # the promote is kept

    code, out, err = registry(capsys, "mirror", "clf", "--db", db, "--mlflow", down)
    assert code == 5 and out == "" and "cannot reach the server" in err


def test_mirror_flags_are_checked_before_anything_is_written(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TUNELAB_MLFLOW", raising=False)
    fresh = tmp_path / "never.db"
    run = make_scored_run(tmp_path, "a", 0.8)
    db = f"sqlite:///{fresh}"
    code, out, err = registry(capsys, "add", "clf", str(run), "--db", db, "--mlflow", "nowhere")
    assert code == 2 and out == "" and "--mlflow" in err and not fresh.exists()
    code, out, err = registry(capsys, "mirror", "clf", "--db", db)
    assert code == 2 and "TUNELAB_MLFLOW" in err and not fresh.exists()
    with pytest.raises(SystemExit):
        main(["registry", "--help"])
    assert "tunelab registry mirror sst2 --mlflow" in capsys.readouterr().out
