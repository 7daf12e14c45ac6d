"""The prediction log of a real `tunelab serve` process: one row per answered input, ids
returned to the client, PII scrubbed, embeddings of the served model, flushed on SIGTERM."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from conftest import tiny_config
from serving_helpers import REPO, TUNELAB, running_server


@pytest.fixture(scope="module")
def clf(tiny_model, toy_data, tmp_path_factory):
    from tunelab import api

    out = tmp_path_factory.mktemp("log-models") / "clf"
    api.train(tiny_config(tiny_model, toy_data, out, train={"epochs": 1}))
    return out


def read(url: str, model: str | None = None) -> dict[str, dict]:
    from tunelab.store.predictions import read_predictions

    return {r["id"]: r for r in read_predictions(url, model=model)}


def test_every_answered_input_is_a_row_with_its_id(clf, tiny_llama, tmp_path):
    db = f"sqlite:///{tmp_path / 'log.db'}"
    args = [f"clf={clf}", f"tiny={tiny_llama}", "--db", db, "--max-wait-ms", "20"]
    with running_server(args, tmp_path / "server.log") as url:
        one = httpx.post(
            f"{url}/v1/classify",
            json={
                "model": "clf",
                "input": "mail me at jane.doe@example.com",
                "metadata": {"group": "eu"},
            },
        )
        many = httpx.post(
            f"{url}/v1/classify", json={"model": "clf", "input": ["great", "awful", "fine"]}
        )
        chat = httpx.post(
            f"{url}/v1/chat/completions",
            json={
                "model": "tiny",
                "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 5,
            },
        )
        streamed = httpx.post(
            f"{url}/v1/completions",
            json={"model": "tiny", "prompt": "Once", "max_tokens": 4, "stream": True},
        )
        assert streamed.status_code == 200 and streamed.text.rstrip().endswith("[DONE]")
        missing = httpx.post(f"{url}/v1/classify", json={"model": "nope", "input": "x"})
        assert one.status_code == many.status_code == chat.status_code == 200
        assert missing.status_code == 404
        rid = one.headers["x-request-id"]
        assert one.json()["data"][0]["id"] == rid
        assert "embedding" not in one.json()["data"][0]  # log-only fields stay out of replies
        batch_ids = [d["id"] for d in many.json()["data"]]
        assert len(set(batch_ids)) == 3 and many.headers["x-request-id"] not in batch_ids
    rows = read(db)  # the server has exited (SIGTERM): everything is flushed
    streamed_id = streamed.headers["x-request-id"]
    assert set(rows) == {rid, *batch_ids, chat.headers["x-request-id"], streamed_id}
    assert rows[streamed_id]["text"] == "Once" and rows[streamed_id]["output"]["finish"]
    row = rows[rid]
    assert row["model"] == "clf" and row["kind"] == "classify" and row["status"] == 200
    assert "jane.doe@example.com" not in row["text"] and row["text"].startswith("mail me at")
    assert row["label"] == one.json()["data"][0]["label"]
    assert row["confidence"] == pytest.approx(one.json()["data"][0]["score"], abs=1e-6)
    assert row["embedding"].shape == (64,) and np.isfinite(row["embedding"]).all()
    assert row["meta"] == {"group": "eu"} and row["n_tokens"] > 3 and row["latency_ms"] > 0
    assert len(row["input_hash"]) == 64 and len(row["version"]) == 12
    gen = rows[chat.headers["x-request-id"]]
    assert (
        gen["kind"] == "generate"
        and gen["output"]["text"] == chat.json()["choices"][0]["message"]["content"]
    )
    assert gen["output"]["completion_tokens"] == chat.json()["usage"]["completion_tokens"]
    assert gen["output"]["nll"] > 0 and gen["embedding"].shape == (64,)
    # the same input gets the same embedding whether alone or in a batch
    again = {r["text"]: r["embedding"] for r in rows.values() if r["text"] in {"great", "awful"}}
    assert not np.allclose(again["great"], again["awful"])


def test_sigterm_under_load_loses_no_answered_request(clf, tmp_path):
    db = f"sqlite:///{tmp_path / 'log.db'}"
    answered: list[str] = []
    with running_server(
        [f"clf={clf}", "--db", db, "--log-text", "none"], tmp_path / "s.log"
    ) as url:

        def ask(i):
            r = httpx.post(f"{url}/v1/classify", json={"model": "clf", "input": [f"text {i}"] * 4})
            return [d["id"] for d in r.json()["data"]] if r.status_code == 200 else []

        with ThreadPoolExecutor(8) as pool:
            for ids in pool.map(ask, range(60)):
                answered += ids
    rows = read(db, model="clf")
    assert len(answered) == 240 and set(answered) <= set(rows)
    assert all(r["text"] is None for r in rows.values())  # --log-text none: the hash only


def test_an_unreachable_database_is_one_line_before_loading(clf, tmp_path):
    proc = subprocess.run(
        [*TUNELAB, "serve", str(clf), "--db", "postgresql://tunelab:secret@127.0.0.1:1/tunelab"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "127.0.0.1:1" in lines[0] and "secret" not in lines[0]
    assert "loading" not in proc.stderr


def test_no_log_writes_nothing(clf, tmp_path):
    db = tmp_path / "never.db"
    args = [f"clf={clf}", "--no-log", "--db", f"sqlite:///{db}"]
    with running_server(args, tmp_path / "s.log") as url:
        r = httpx.post(f"{url}/v1/classify", json={"model": "clf", "input": "fine"})
        assert r.status_code == 200 and r.json()["data"][0]["id"] == r.headers["x-request-id"]
        metrics = httpx.get(f"{url}/metrics").text
    assert not db.exists() and "tunelab_log_backlog" not in metrics


def test_a_team_log_on_postgresql_survives_an_outage(clf, tmp_path):
    """A real PostgreSQL server (Debian's package) goes away while the server answers: every
    request still gets its 200, the backlog is counted on /metrics, and once the database is
    back every answered row lands."""
    import re
    import sys
    import time

    sys.path.insert(0, str(REPO / "tests" / "store"))
    from postgres import pg_bin, postgres_server

    if pg_bin() is None:
        pytest.skip("PostgreSQL is not installed (Debian package `postgresql`)")

    def backlog(url):
        return float(
            re.search(r"^tunelab_log_backlog (\S+)", httpx.get(f"{url}/metrics").text, re.M)[1]
        )

    with postgres_server() as pg:
        db = pg.fresh_database()
        args = [f"clf={clf}", "--db", db, "--monitor-every-s", "0"]
        with running_server(args, tmp_path / "server.log") as url:

            def ask(text):
                r = httpx.post(f"{url}/v1/classify", json={"model": "clf", "input": text})
                assert r.status_code == 200
                return r.headers["x-request-id"]

            answered = [ask("before the outage")]
            pg.stop()
            answered += [ask(f"during the outage {i}") for i in range(5)]
            deadline = time.monotonic() + 60
            while backlog(url) < 5 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert backlog(url) >= 5  # counted, not lost, not failing requests
            pg.start()
            answered.append(ask("after the outage"))
        rows = read(db, model="clf")
    assert set(answered) <= set(rows)
    assert rows[answered[3]]["text"] == "during the outage 2"


def test_metrics_carry_the_live_drift_and_estimate_gauges(clf, toy_data, tmp_path):
    import re
    import time

    texts = [json.loads(x)["text"] for x in toy_data["test"].read_text().splitlines()]
    db = f"sqlite:///{tmp_path / 'log.db'}"
    args = [f"clf={clf}", "--db", db, "--monitor-every-s", "1"]
    with running_server(args, tmp_path / "server.log") as url:
        for i in range(0, 80, 20):
            r = httpx.post(f"{url}/v1/classify", json={"model": "clf", "input": texts[i : i + 20]})
            assert r.status_code == 200
        deadline, found = time.monotonic() + 240, {}
        while time.monotonic() < deadline and len(found) < 4:
            body = httpx.get(f"{url}/metrics").text
            for name in (
                "tunelab_drift_mmd_p",
                "tunelab_estimated_accuracy",
                "tunelab_log_rows_written",
                "tunelab_monitor_alerts",
            ):
                m = re.search(rf'^{name}(?:{{model="clf"}})? (\S+)', body, re.M)
                if m:
                    found[name] = float(m[1])
            time.sleep(1)
    assert set(found) == {
        "tunelab_drift_mmd_p",
        "tunelab_estimated_accuracy",
        "tunelab_log_rows_written",
        "tunelab_monitor_alerts",
    }
    assert found["tunelab_monitor_alerts"] >= 0  # the default rules ran on the window
    assert 0 <= found["tunelab_drift_mmd_p"] <= 1 and 0 <= found["tunelab_estimated_accuracy"] <= 1
    assert found["tunelab_log_rows_written"] >= 50
