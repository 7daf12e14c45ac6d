"""The model registry on SQLite and on a real PostgreSQL server: versions are numbered per
name and keep their lineage, aliases move in one transaction each, rollback walks the alias's
history back, references resolve to folders, and bad input is an error that names the model
and writes nothing. The folders are hand-made run and export folders (no weights: adding a
version never loads one)."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import postgres
import pytest
import sqlalchemy as sa
import yaml

from tunelab.errors import TunelabError
from tunelab.store.db import open_db
from tunelab.store.lineage import FolderError, folder_version
from tunelab.store.registry import (
    RegistryError,
    add_version,
    alias_history,
    get_version,
    list_versions,
    promote,
    resolve,
    rollback,
    tag,
)
from tunelab.store.tables import alias_history as history_table
from tunelab.store.tables import model_aliases, model_versions

# the fixtures of a real PostgreSQL server and of an empty database of each kind
pg_server, db_url = postgres.pg_server, postgres.db_url


def make_run(root: Path, name: str, *, model: str = "base-model", versions=True) -> Path:
    """A run folder as training leaves it, less the weights: config.yaml (naming data files
    that exist), model/tunelab.json."""
    run = root / name
    (run / "model").mkdir(parents=True)
    data = root / f"{name}-train.jsonl"
    data.write_text(json.dumps({"text": name, "label": "pos"}) + "\n")
    config = {
        "model": model,
        "task": "classification",
        "data": {"train": str(data), "test": str(root / "gone.jsonl")},
        "output": str(run),
    }
    if versions:
        config["versions"] = {"tunelab": "9.9.9", "torch": "0.0.1"}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    (run / "model" / "tunelab.json").write_text(
        json.dumps({"schema_version": 1, "task": "classification", "method": "full"})
    )
    (run / "model" / "model.safetensors").write_bytes(b"not really weights " + name.encode())
    return run


@pytest.fixture
def engine(db_url):
    engine = open_db(db_url)
    yield engine
    engine.dispose()


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


def test_two_versions_promote_and_rollback_to_the_earlier_champion(engine, tmp_path):
    first = add_version(engine, "sst2", make_run(tmp_path, "a"), alias="champion")
    second = add_version(engine, "sst2", make_run(tmp_path, "b"))
    assert (first["version"], second["version"]) == (1, 2)
    assert first["aliases"] == ["champion"] and second["aliases"] == []
    assert Path(second["path"]).is_absolute() and second["path"].endswith("/b")

    moved = promote(engine, "sst2", 2)
    assert moved == {
        "name": "sst2",
        "alias": "champion",
        "version": 2,
        "previous": 1,
        "changed": True,
    }
    assert resolve(engine, "champion@sst2") == second["path"]
    assert resolve(engine, "sst2") == second["path"]  # a bare name is its champion
    assert resolve(engine, "sst2@1") == first["path"]

    back = rollback(engine, "sst2")
    assert back["version"] == 1 and back["previous"] == 2
    assert resolve(engine, "champion@sst2") == first["path"]
    assert get_version(engine, "sst2", "champion")["version"] == 1
    actions = [
        (h["action"], h["from_version"], h["to_version"]) for h in alias_history(engine, "sst2")
    ]
    assert actions == [("add", None, 1), ("promote", 1, 2), ("rollback", 2, 1)]
    with pytest.raises(RegistryError, match="sst2.*champion.*no earlier version"):
        rollback(engine, "sst2")  # version 1 was the first champion


def test_rollback_walks_back_one_holder_at_a_time(engine, tmp_path):
    for name in "abc":
        add_version(engine, "m", make_run(tmp_path, name))
    for v in (1, 2, 3):
        promote(engine, "m", v)
    assert rollback(engine, "m")["version"] == 2
    assert rollback(engine, "m")["version"] == 1  # not back to 3
    promote(engine, "m", 3)
    assert rollback(engine, "m")["version"] == 1  # the holder before 3 was 1 this time


def test_promoting_the_holder_again_changes_nothing(engine, tmp_path):
    add_version(engine, "m", make_run(tmp_path, "a"), alias="champion")
    again = promote(engine, "m", 1)
    assert again["changed"] is False and again["previous"] == 1
    assert len(alias_history(engine, "m")) == 1


def test_aliases_are_independent_and_promote_takes_an_alias(engine, tmp_path):
    add_version(engine, "m", make_run(tmp_path, "a"), alias="champion")
    add_version(engine, "m", make_run(tmp_path, "b"), alias="challenger")
    assert promote(engine, "m", "challenger")["version"] == 2  # promote NAME challenger
    rows = list_versions(engine, "m")
    assert [r["aliases"] for r in rows] == [[], ["challenger", "champion"]]
    assert rollback(engine, "m", alias="champion")["version"] == 1
    with pytest.raises(RegistryError, match="challenger.*no earlier"):
        rollback(engine, "m", alias="challenger")


def test_a_version_records_its_lineage_config_and_results(engine, tmp_path):
    run = make_run(tmp_path, "a")
    v = add_version(engine, "m", run)
    assert v["kind"] == "run" and v["config"]["model"] == "base-model"
    lineage = v["lineage"]
    train = tmp_path / "a-train.jsonl"
    assert lineage["data"]["data.train"]["sha256"] == hashlib.sha256(train.read_bytes()).hexdigest()
    assert lineage["data"]["data.test"] == {
        "path": str(tmp_path / "gone.jsonl"),
        "found": None,
        "sha256": None,
    }
    assert lineage["versions"] == {"tunelab": "9.9.9", "torch": "0.0.1"}
    assert lineage["versions_from"] == "run"
    assert lineage["model_fingerprint"] == folder_version(run / "model")
    assert lineage["served_version"] == folder_version(run)
    assert v["results"] is None  # this run has no results.json
    # the lineage is what it was at registration, whatever happens to the data later
    train.write_text("changed\n")
    assert get_version(engine, "m", 1)["lineage"] == lineage


def test_results_json_is_kept_and_nan_is_stored_as_null(engine, tmp_path):
    run = make_run(tmp_path, "a")
    timing = dict.fromkeys(
        ("train_seconds", "samples_per_s", "tokens_per_s", "eval_seconds", "total_seconds"), 1.0
    )
    results = {
        "schema_version": 1,
        "test": {"accuracy": 0.75, "loss": float("nan")},
        "timing": {**timing, "train_samples": 4, "train_tokens": 40},
        "run": {
            "model": "base-model",
            "task": "classification",
            "method": "full",
            "output": str(run),
            "trainable_params": 1,
            "total_params": 1,
            "steps": 1,
            "epochs": 1.0,
        },
    }
    (run / "results.json").write_text(json.dumps(results))  # json writes NaN as NaN
    v = add_version(engine, "m", run)
    assert v["results"]["test"] == {"accuracy": 0.75, "loss": None}
    assert get_version(engine, "m", 1)["results"]["run"]["steps"] == 1


def test_versions_of_a_run_that_recorded_none_are_the_installed_ones(engine, tmp_path):
    import tunelab

    v = add_version(engine, "m", make_run(tmp_path, "a", versions=False))
    assert v["lineage"]["versions_from"] == "installed"
    assert v["lineage"]["versions"]["tunelab"] == tunelab.__version__


def test_an_export_folder_is_a_version_of_kind_export(engine, tmp_path):
    run = make_run(tmp_path, "a")
    export = tmp_path / "export-onnx"
    export.mkdir()
    (export / "tunelab.json").write_text(json.dumps({"task": "classification", "format": "onnx"}))
    (export / "export.json").write_text(json.dumps({"format": "onnx", "source": str(run)}))
    v = add_version(engine, "m", export)
    assert v["kind"] == "export" and v["path"] == str(export.resolve())
    assert v["config"]["model"] == "base-model"  # from the run it was exported from
    assert v["lineage"]["run_dir"] == str(run.resolve())


def test_parent_is_the_champion_when_the_run_started_from_it(engine, tmp_path):
    champion = add_version(engine, "m", make_run(tmp_path, "a"), alias="champion")
    child = add_version(engine, "m", make_run(tmp_path, "b", model=champion["path"] + "/model"))
    assert child["parent_version"] == 1
    unrelated = add_version(engine, "m", make_run(tmp_path, "c"))
    assert unrelated["parent_version"] is None
    explicit = add_version(engine, "m", make_run(tmp_path, "d"), parent=3)
    assert explicit["parent_version"] == 3


def test_tags_are_kept_per_version(engine, tmp_path):
    add_version(engine, "m", make_run(tmp_path, "a"))
    tag(engine, "m", 1, "reviewed_by", "ana")
    v = tag(engine, "m", 1, "ticket", "ML-12")
    assert v["tags"] == {"reviewed_by": "ana", "ticket": "ML-12"}
    with pytest.raises(RegistryError, match="tag key"):
        tag(engine, "m", 1, "bad key", "x")


def test_bad_input_names_the_model_and_writes_nothing(engine, tmp_path):
    add_version(engine, "m", make_run(tmp_path, "a"), alias="champion")
    before = [_count(engine, t) for t in (model_versions, model_aliases, history_table)]
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text("{}")  # an HF folder without tunelab.json
    cases = [
        (lambda: add_version(engine, "m", tmp_path / "nope"), "nope: no such folder"),
        (lambda: add_version(engine, "m", plain), "plain: not a tunelab run"),
        (lambda: add_version(engine, "m", make_run(tmp_path, "p"), parent=7), "m: no version 7"),
        (lambda: add_version(engine, "bad@name", make_run(tmp_path, "q")), "bad@name"),
        (lambda: promote(engine, "m", 5), "m: no version 5"),
        (lambda: promote(engine, "other", 1), "no model named 'other'.*registered: m"),
        (lambda: promote(engine, "m", "shadow"), "m: no alias 'shadow'"),
        (lambda: rollback(engine, "m", alias="challenger"), "m: alias 'challenger' is not set"),
        (lambda: tag(engine, "m", 2, "k", "v"), "m: no version 2"),
        (lambda: get_version(engine, "m", 4), "m: no version 4"),
        (lambda: resolve(engine, "challenger@m"), "m: no alias 'challenger'"),
        (lambda: resolve(engine, "m@9"), "m: no version 9"),
        (lambda: resolve(engine, "a@b@c"), "a@b@c"),
        (lambda: list_versions(engine, "other"), "no model named 'other'"),
    ]
    for call, message in cases:
        with pytest.raises(TunelabError, match=message) as err:
            call()
        assert "\n" not in str(err.value)
    assert isinstance(FolderError("x"), TunelabError)
    assert [_count(engine, t) for t in (model_versions, model_aliases, history_table)] == before


def test_a_name_without_a_champion_resolves_only_by_version(engine, tmp_path):
    v = add_version(engine, "m", make_run(tmp_path, "a"))
    with pytest.raises(RegistryError, match="m: no champion yet"):
        resolve(engine, "m")
    assert resolve(engine, "m@1") == v["path"]


def test_concurrent_promotes_keep_the_alias_and_its_history_consistent(engine, tmp_path):
    for name in "ab":
        add_version(engine, "m", make_run(tmp_path, name))
    errors: list[BaseException] = []

    def promoter(version: int) -> None:
        try:
            for _ in range(6):
                promote(engine, "m", version)
                promote(engine, "m", 3 - version)
        except BaseException as exc:  # asserted below
            errors.append(exc)

    threads = [threading.Thread(target=promoter, args=(v,)) for v in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    moves = alias_history(engine, "m", "champion")
    # each move starts where the one before it ended: no two promotes interleaved
    assert moves[0]["from_version"] is None
    for before, after in zip(moves, moves[1:]):
        assert after["from_version"] == before["to_version"] != after["to_version"]
    assert get_version(engine, "m", "champion")["version"] == moves[-1]["to_version"]


def test_concurrent_adds_get_distinct_version_numbers(engine, tmp_path):
    runs = [make_run(tmp_path, f"r{i}") for i in range(4)]
    errors: list[BaseException] = []

    def adder(run: Path) -> None:
        try:
            add_version(engine, "m", run)
        except BaseException as exc:  # asserted below
            errors.append(exc)

    threads = [threading.Thread(target=adder, args=(r,)) for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [v["version"] for v in list_versions(engine, "m")] == [1, 2, 3, 4]


def test_the_migration_matches_the_tables_and_downgrades(db_url):
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from tunelab.store.db import _alembic_config
    from tunelab.store.tables import metadata

    engine = open_db(db_url)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        with engine.begin() as conn:
            command.downgrade(_alembic_config(conn), "0002")
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        assert {"predictions", "feedback"} <= tables
        assert not tables & {"model_versions", "model_aliases", "alias_history"}
    finally:
        engine.dispose()
    open_db(db_url).dispose()  # and back up to head
