"""`tunelab serve champion@NAME` on a real server process: it serves what the registry alias
points at and follows promotions and rollbacks without a restart. Client threads keep
classifying through every swap and no request fails; requests already waiting in the old
model's batcher (held there with --hold-file) finish on the old model; the prediction log
says which version answered; a version that will not load leaves the old one serving; a
reference that does not resolve is one line and exit 2 before any weights load."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import httpx
import pytest
from conftest import tiny_config
from serving_helpers import running_server, wait_for

from tunelab.cli.commands import main


@pytest.fixture(scope="module")
def runs(tiny_model, toy_data, tmp_path_factory) -> tuple[Path, Path, Path]:
    """(a, b, broken): two tiny classifier runs, and a copy of `a` whose weights are then
    ruined (it registers fine, since adding a version reads no weights, but cannot load)."""
    from tunelab import api

    root = tmp_path_factory.mktemp("alias-runs")
    for name, seed in (("a", 0), ("b", 1)):
        api.train(tiny_config(tiny_model, toy_data, root / name, train={"epochs": 1, "seed": seed}))
    shutil.copytree(root / "a", root / "broken")
    return root / "a", root / "b", root / "broken"


def _registry(db: str):
    from tunelab.store.db import open_db

    return open_db(db)


def _served(url: str) -> dict[str, dict]:
    return {m["id"]: m for m in httpx.get(f"{url}/v1/models").json()["data"]}


class Clients:
    """Threads that classify one text at a time, without pause, until stopped."""

    def __init__(self, url: str, model: str, n: int = 3):
        self.url, self.model = url, model
        self.replies: list[tuple[int, str | None]] = []  # (status, X-Request-Id)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._ask, args=(i,)) for i in range(n)]

    def _ask(self, worker: int) -> None:
        with httpx.Client(timeout=120) as client:
            i = 0
            while not self._stop.is_set():
                i += 1
                try:
                    r = client.post(
                        f"{self.url}/v1/classify",
                        json={"model": self.model, "input": f"client {worker} says {i} good"},
                    )
                    reply = (r.status_code, r.headers.get("x-request-id"))
                except httpx.HTTPError as exc:  # a dropped connection counts as a failure
                    with self._lock:
                        self.errors.append(repr(exc))
                    continue
                with self._lock:
                    self.replies.append(reply)

    def count(self) -> int:
        with self._lock:
            return len(self.replies)

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(180)


def _classify(url: str, model: str, text: str) -> str:
    r = httpx.post(f"{url}/v1/classify", json={"model": model, "input": text}, timeout=120)
    assert r.status_code == 200, r.text
    return r.headers["x-request-id"]


def test_promote_and_rollback_swap_live_with_no_request_dropped(runs, tmp_path):
    from tunelab.store.predictions import read_predictions
    from tunelab.store.registry import add_version, promote, rollback

    a, b, broken = runs
    db = f"sqlite:///{tmp_path / 'team.db'}"
    engine = _registry(db)
    v1 = add_version(engine, "clf", a, alias="champion")
    v2 = add_version(engine, "clf", b)
    fingerprint = {1: v1["lineage"]["served_version"], 2: v2["lineage"]["served_version"]}
    assert fingerprint[1] != fingerprint[2]
    args = ["champion@clf", "pinned=clf@2", "--db", db, "--reload-every-s", "0.5"]
    args += ["--monitor-every-s", "0", "--max-wait-ms", "2"]
    log = tmp_path / "server.log"
    with running_server(args, log) as url:
        models = _served(url)
        assert models["clf"]["version"] == 1 and models["clf"]["reference"] == "champion@clf"
        assert models["pinned"]["version"] == 2 and models["pinned"]["reference"] == "clf@2"
        first = _classify(url, "clf", "before any promotion")

        with Clients(url, "clf") as clients:
            wait_for(lambda: clients.count() >= 10, "the clients' first answers")
            promote(engine, "clf", 2)
            wait_for(lambda: _served(url)["clf"]["version"] == 2, "the promotion to be served")
            after_promote = _classify(url, "clf", "after the promotion")
            seen = clients.count()
            wait_for(lambda: clients.count() >= seen + 10, "answers from version 2")
            rollback(engine, "clf")
            wait_for(lambda: _served(url)["clf"]["version"] == 1, "the rollback to be served")
            after_rollback = _classify(url, "clf", "after the rollback")
            seen = clients.count()
            wait_for(lambda: clients.count() >= seen + 10, "answers after the rollback")

        # a version that cannot load: logged, and the old one keeps serving
        broken_v = add_version(engine, "clf", broken)["version"]
        (broken / "model" / "model.safetensors").write_bytes(b"not weights any more")
        promote(engine, "clf", broken_v)
        wait_for(lambda: "not swapped in" in log.read_text(), "the failed load's error line")
        assert _served(url)["clf"]["version"] == 1
        still = _classify(url, "clf", "while the broken version is champion")
        assert _served(url)["pinned"]["version"] == 2  # a pinned version never moves

    statuses = [s for s, _ in clients.replies]
    assert not clients.errors and len(statuses) >= 30
    assert set(statuses) == {200}, sorted(set(statuses))  # none dropped during the swaps
    text = log.read_text()
    assert "serve: clf now version 2 (was 1)" in text
    assert "serve: clf now version 1 (was 2)" in text
    assert f"version {broken_v}" in text and "version 1 keeps serving" in text

    rows = {r["id"]: r for r in read_predictions(db, model="clf")}
    assert rows[first]["version"] == fingerprint[1]
    assert rows[after_promote]["version"] == fingerprint[2]
    assert rows[after_rollback]["version"] == fingerprint[1]
    assert rows[still]["version"] == fingerprint[1]
    logged = [rows[rid]["version"] for _, rid in clients.replies]
    assert set(logged) == {fingerprint[1], fingerprint[2]}  # both answered the clients
    engine.dispose()


def test_requests_waiting_in_the_old_engine_finish_on_it(runs, tmp_path):
    """Requests held in the old model's batcher across the swap are answered by the old model
    once released (its engine is closed only after them), and later ones by the new."""
    from concurrent.futures import ThreadPoolExecutor

    from tunelab.store.predictions import read_predictions
    from tunelab.store.registry import add_version, promote

    a, b, _ = runs
    db = f"sqlite:///{tmp_path / 'team.db'}"
    engine = _registry(db)
    v1 = add_version(engine, "clf", a, alias="champion")
    v2 = add_version(engine, "clf", b)
    hold = tmp_path / "hold"
    args = ["champion@clf", "--db", db, "--reload-every-s", "0.5", "--monitor-every-s", "0"]
    args += ["--hold-file", str(hold)]
    with running_server(args, tmp_path / "server.log") as url:
        hold.touch()  # the engines take nothing: these requests wait in version 1's queue
        with ThreadPoolExecutor(4) as pool:
            held = [pool.submit(_classify, url, "clf", f"held {i}") for i in range(4)]
            wait_for(lambda: _queued(url) >= 3, "the held requests to queue")
            promote(engine, "clf", 2)
            wait_for(lambda: _served(url)["clf"]["version"] == 2, "the promotion to be served")
            hold.unlink()  # released: the old engine, still running, answers its own
            held_ids = [f.result(timeout=180) for f in held]
        after = _classify(url, "clf", "after the swap")
    rows = {r["id"]: r for r in read_predictions(db, model="clf")}
    assert {rows[i]["version"] for i in held_ids} == {v1["lineage"]["served_version"]}
    assert rows[after]["version"] == v2["lineage"]["served_version"]
    engine.dispose()


def _queued(url: str) -> float:
    """Texts waiting in clf's batcher (while held, the batcher has taken one more in hand)."""
    import re

    found = re.search(r'^tunelab_queued_requests{model="clf"} (\S+)', _metrics(url), re.M)
    return float(found[1]) if found else 0.0


def _metrics(url: str) -> str:
    return httpx.get(f"{url}/metrics").text


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "loading" not in err[0]
    return err[0]


def test_a_reference_that_does_not_resolve_is_one_line_and_exit_2(runs, tmp_path, capsys):
    from tunelab.store.registry import add_version

    a, _, _ = runs
    db = f"sqlite:///{tmp_path / 'team.db'}"
    engine = _registry(db)
    add_version(engine, "clf", a)  # registered, but no champion
    engine.dispose()
    assert "no model named 'nope'" in _error(capsys, ["serve", "champion@nope", "--db", db])
    assert "no alias 'champion'" in _error(capsys, ["serve", "champion@clf", "--db", db])
    assert "no version 7" in _error(capsys, ["serve", "x=clf@7", "--db", db, "--no-log"])
    assert "--reload-every-s" in _error(
        capsys, ["serve", "clf@1", "--db", db, "--reload-every-s", "-1"]
    )


def test_registry_references_are_named_after_the_registry_name(tmp_path):
    from tunelab.serving.registry import parse_spec

    assert parse_spec("champion@sst2") == ("sst2", "champion@sst2")
    assert parse_spec("sst2@3") == ("sst2", "sst2@3")
    assert parse_spec("live=challenger@sst2") == ("live", "challenger@sst2")
    folder = tmp_path / "a@b"
    folder.mkdir()
    assert parse_spec(str(folder)) == ("a@b", str(folder))  # an existing path stays a path
