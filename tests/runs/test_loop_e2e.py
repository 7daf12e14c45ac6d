"""The whole loop with real processes: `tunelab serve champion@clf` answers shifted traffic,
clients send feedback over HTTP, `tunelab monitor` shows the real accuracy, `tunelab retrain`
promotes a better challenger, and the running server answers with it without a restart."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from test_retrain import champion, registered, shifted_rows  # noqa: F401 - fixture reused

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serving"))
from serving_helpers import REPO, TUNELAB, running_server  # noqa: E402

pytestmark = pytest.mark.e2e


def classify_all(url: str, rows: list[dict]) -> list[tuple[str, str]]:
    """(request id, predicted label) per row, one request each."""
    out = []
    with httpx.Client(timeout=60) as client:
        for r in rows:
            reply = client.post(f"{url}/v1/classify", json={"model": "clf", "input": r["text"]})
            assert reply.status_code == 200, reply.text
            out.append((reply.headers["x-request-id"], reply.json()["data"][0]["label"]))
    return out


def wait_rows(db: str, n: int, limit_s: float = 120.0) -> None:
    from tunelab.store.predictions import read_predictions

    end = time.monotonic() + limit_s
    while len(read_predictions(db, model="clf")) < n:
        assert time.monotonic() < end, "the log never got every answered request"
        time.sleep(0.2)


def served_version(url: str) -> int | None:
    models = httpx.get(f"{url}/v1/models", timeout=10).json()["data"]
    return next(m.get("version") for m in models if m["id"] == "clf")


def test_serve_feedback_monitor_retrain_promote_live(champion, tmp_path):  # noqa: F811
    db = f"sqlite:///{tmp_path / 'loop.db'}"
    registered(db, champion)
    live, held = shifted_rows(300, seed=21), shifted_rows(120, seed=22)
    cfg = tmp_path / "retrain.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {"train": {"epochs": 6, "lr": 5e-3}, "retrain": {"bootstrap": 300, "margin": 0.05}}
        )
    )
    args = ["champion@clf", "--db", db, "--reload-every-s", "1"]
    with running_server(args, tmp_path / "server.log") as url:
        assert served_version(url) == 1
        before = classify_all(url, held)
        answered = classify_all(url, live)
        with httpx.Client(timeout=60) as client:
            for (rid, _), row in zip(answered, live):
                reply = client.post(
                    f"{url}/v1/feedback", json={"request_id": rid, "label": row["label"]}
                )
                assert reply.status_code == 201, reply.text
        wait_rows(db, len(held) + len(live))  # the log's writer flushes in batches
        mon = subprocess.run(
            [*TUNELAB, "monitor", str(champion), "--db", db, "--name", "clf", "--json"]
            + ["--window", "150", "--out", str(tmp_path / "monitor")],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=600,
        )
        assert mon.returncode in (0, 3), mon.stderr
        windows = json.loads(mon.stdout)["windows"]
        labelled = sum(w["estimate"]["n_labelled"] for w in windows)
        assert labelled == len(live)  # every answer reached the monitor
        assert all(w["estimate"]["true_accuracy"] is not None for w in windows)
        ret = subprocess.run(
            [*TUNELAB, "retrain", "clf", "--db", db, "--config", str(cfg), "--json"]
            + ["--work", str(tmp_path / "retrains")],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=900,
        )
        assert ret.returncode == 0, ret.stderr[-3000:]
        report = json.loads(ret.stdout)
        assert report["decision"] == "promoted"
        end = time.monotonic() + 120
        while served_version(url) != 2:  # the server follows the alias on its own
            assert time.monotonic() < end, "the server never picked up version 2"
            time.sleep(0.5)
        after = classify_all(url, held)
    truth = [r["label"] for r in held]
    acc_before = sum(p == t for (_, p), t in zip(before, truth)) / len(truth)
    acc_after = sum(p == t for (_, p), t in zip(after, truth)) / len(truth)
    assert acc_after > acc_before + 0.1, (acc_before, acc_after)
