"""`tunelab registry` on real run folders: a tiny classifier trained in seconds, and a second
run fine-tuned from the first one's model (so its parent is found without --parent). The
command runs in-process through tunelab.cli's main, once as a real subprocess; bad input exits
2 with one line naming the model and leaves the database as it was."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "monitor"))
from monitor_run_helpers import train_tiny_run  # noqa: E402

from tunelab.cli.commands import main  # noqa: E402


@pytest.fixture(scope="module")
def runs(tiny_model, toy_data, tmp_path_factory) -> tuple[Path, Path]:
    """(first, second): the second run starts from the first run's model."""
    root = tmp_path_factory.mktemp("registry-runs")
    first = train_tiny_run(tiny_model, toy_data, root / "a")
    second = train_tiny_run(first / "model", toy_data, root / "b")
    return first, second


def registry(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["registry", *args])
    out, err = capsys.readouterr()
    return code, out, err


def as_json(capsys, *args: str):
    code, out, err = registry(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_add_promote_rollback_and_resolve(runs, tmp_path, capsys):
    from tunelab.store.db import open_db
    from tunelab.store.registry import resolve

    first, second = runs
    db = f"sqlite:///{tmp_path / 'reg.db'}"
    one = as_json(capsys, "add", "clf", str(first), "--alias", "champion", "--db", db)
    assert one["version"] == 1 and one["aliases"] == ["champion"] and one["kind"] == "run"
    assert one["path"] == str(first.resolve())
    assert one["results"]["test"]["accuracy"] >= 0  # results.json came along
    assert one["lineage"]["versions_from"] == "run"  # config.yaml recorded them
    assert one["lineage"]["data"]["data.train"]["sha256"]

    code, out, _ = registry(capsys, "add", "clf", str(second), "--db", db)
    assert code == 0 and "clf: version 2 added" in out
    assert "parent version 1" in out  # it was fine-tuned from the champion's model

    code, out, _ = registry(capsys, "promote", "clf", "2", "--db", db)
    assert code == 0 and out.strip() == "clf: champion -> version 2 (was version 1)"
    engine = open_db(db)
    try:
        assert resolve(engine, "champion@clf") == str(second.resolve())
    finally:
        engine.dispose()

    moved = as_json(capsys, "rollback", "clf", "--db", db)
    assert moved == {"name": "clf", "alias": "champion", "version": 1, "previous": 2}
    shown = as_json(capsys, "show", "clf", "champion", "--db", db)
    assert shown["version"] == 1 and shown["path"] == str(first.resolve())
    assert [h["action"] for h in shown["history"]] == ["add", "promote", "rollback"]

    code, out, _ = registry(capsys, "list", "--db", db)
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["NAME", "VERSION", "ALIASES"]
    assert lines[2].split()[:3] == ["clf", "1", "champion"] and "test f1_macro=" in lines[2]
    assert lines[3].split()[:3] == ["clf", "2", "-"]
    listed = as_json(capsys, "list", "clf", "--db", db)
    assert [(v["version"], v["parent_version"]) for v in listed] == [(1, None), (2, 1)]

    code, out, _ = registry(capsys, "show", "clf", "2", "--db", db)
    assert code == 0 and out.startswith("clf version 2\n") and "data.train" in out

    tagged = as_json(capsys, "tag", "clf", "2", "reviewed_by=ana", "--db", db)
    assert tagged["tags"] == {"reviewed_by": "ana"}


def test_bad_input_exits_2_with_one_line_and_writes_nothing(runs, tmp_path, capsys):
    first, _ = runs
    fresh = tmp_path / "never.db"
    code, out, err = registry(
        capsys, "add", "clf", str(tmp_path / "no-such-run"), "--db", f"sqlite:///{fresh}"
    )
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "no-such-run" in err
    assert not fresh.exists()  # refused before the database was opened

    db = f"sqlite:///{tmp_path / 'reg.db'}"
    assert registry(capsys, "add", "clf", str(first), "--alias", "champion", "--db", db)[0] == 0
    before = as_json(capsys, "show", "clf", "--db", db)
    for args, named in [
        (("promote", "clf", "7"), "clf: no version 7"),
        (("promote", "other", "1"), "no model named 'other'"),
        (("rollback", "clf"), "clf: alias 'champion' has no earlier version"),
        (("tag", "clf", "1", "no-equals-sign"), "KEY=VALUE"),
        (("show", "clf", "challenger"), "clf: no alias 'challenger'"),
        (("add", "clf", str(first / "model" / "tunelab.json")), "not a folder"),
    ]:
        code, out, err = registry(capsys, *args, "--db", db)
        assert code == 2, args
        assert out == "" and len(err.strip().splitlines()) == 1 and named in err, (args, err)
    assert as_json(capsys, "show", "clf", "--db", db) == before


def test_an_unreachable_database_is_one_line_without_the_password(capsys):
    code, out, err = registry(capsys, "list", "--db", "postgresql://u:secret@127.0.0.1:1/reg")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "127.0.0.1:1/reg" in err and "secret" not in err


def test_the_command_as_a_subprocess_prints_json(runs, tmp_path):
    db = f"sqlite:///{tmp_path / 'reg.db'}"
    first, _ = runs

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "tunelab.cli", "registry", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert run("add", "clf", str(first), "--db", db).returncode == 0
    listed = run("list", "--db", db, "--json")
    assert listed.returncode == 0, listed.stderr
    assert [v["version"] for v in json.loads(listed.stdout)] == [1]


def test_help_has_examples_and_an_action_is_required(capsys):
    with pytest.raises(SystemExit) as done:
        main(["registry", "--help"])
    assert done.value.code == 0 and "tunelab registry promote sst2 2" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["registry"])
    assert done.value.code == 2 and "ACTION" in capsys.readouterr().err
