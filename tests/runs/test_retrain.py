"""`tunelab retrain`: feedback on a shifted workload makes a challenger that beats the champion
on the new data without forgetting the old, and the gate promotes it; feedback on unshifted
traffic is refused; a retrain killed halfway leaves the champion and continues when rerun."""

from __future__ import annotations

import json
import random
import time
import uuid

import numpy as np
import pytest
import yaml
from conftest import FILLER, tiny_config, toy_rows

from tunelab.cli.commands import main
from tunelab.store.db import open_db
from tunelab.store.feedback import add_many
from tunelab.store.registry import add_version, get_version
from tunelab.store.tables import predictions

# sentiment words the champion never saw: the shift it must learn from feedback
NEW_POS = ["superb", "brilliant", "delightful", "splendid"]
NEW_NEG = ["dreadful", "tedious", "bland", "clumsy"]


def shifted_rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        positive = rng.random() < 0.5
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 10))]
        words.insert(rng.randint(0, len(words)), rng.choice(NEW_POS if positive else NEW_NEG))
        rows.append({"text": " ".join(words), "label": ["negative", "positive"][int(positive)]})
    return rows


@pytest.fixture(scope="module")
def champion(tiny_model, toy_data, tmp_path_factory):
    from tunelab import api

    out = tmp_path_factory.mktemp("retrain-champion") / "clf"
    api.train(tiny_config(tiny_model, toy_data, out, train={"epochs": 4}))
    return out


def log_with_feedback(url: str, run_dir, rows: list[dict], name: str = "clf") -> None:
    """What `tunelab serve` logs for these inputs, and a feedback label for each."""
    from tunelab.inference.forward import predict_texts
    from tunelab.methods.loading import load_trained

    preds = predict_texts(load_trained(run_dir), [r["text"] for r in rows])
    t0 = time.time() - 1000
    logged = []
    for i, (r, p) in enumerate(zip(rows, preds)):
        rid = uuid.uuid4().hex
        logged.append(
            {
                "id": rid,
                "request_id": rid,
                "time": t0 + i,
                "model": name,
                "kind": "classify",
                "text": r["text"],
                "output": {k: p[k] for k in ("label", "score", "scores")},
                "label": p["label"],
                "confidence": p["score"],
                "status": 200,
            }
        )
    engine = open_db(url)
    with engine.begin() as conn:
        conn.execute(predictions.insert(), logged)
    info = {"model": name, "kind": "classify", "labels": ["negative", "positive"], "status": 200}
    add_many(
        engine, [(x["id"], {"label": r["label"]}, info, None) for x, r in zip(logged, rows)], "test"
    )
    engine.dispose()


def registered(url: str, run_dir) -> None:
    engine = open_db(url)
    add_version(engine, "clf", run_dir, alias="champion")
    engine.dispose()


def champion_version(url: str) -> int:
    engine = open_db(url)
    try:
        return get_version(engine, "clf", "champion")["version"]
    finally:
        engine.dispose()


def write_config(path, **retrain) -> str:
    cfg = {
        "train": {"epochs": 6, "lr": 5e-3},
        "retrain": {"bootstrap": 300, "margin": 0.05, **retrain},
    }
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_shift_with_feedback_is_learned_and_promoted(champion, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'loop.db'}"
    registered(url, champion)
    log_with_feedback(url, champion, shifted_rows(300, seed=5))
    cfg = write_config(tmp_path / "retrain.yaml")
    argv = ["retrain", "clf", "--db", url, "--config", cfg, "--work", str(tmp_path / "w"), "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["decision"] == "promoted" and report["reasons"] == []
    new, old = report["evals"]["new"], report["evals"]["old_test"]
    assert new["challenger"] > new["champion"] and new["low"] > 0  # learned the shift
    assert old["low"] >= -0.05  # and did not forget beyond the margin
    assert new["rows"] == report["data"]["rows"]["test"] and new["mcnemar"]["b_only"] > 0
    assert champion_version(url) == report["challenger"]["version"] == 2
    engine = open_db(url)
    v2 = get_version(engine, "clf", 2)
    engine.dispose()
    assert v2["parent_version"] == 1 and "challenger" in v2["aliases"]
    assert (tmp_path / "w" / "clf").exists()
    work = report["work"]
    assert "promoted" in open(f"{work}/retrain.md").read()
    # the new champion was trained on that feedback: retraining it has nothing new to learn
    assert main(argv) == 4
    again = json.loads(capsys.readouterr().out)
    assert again["decision"] == "nothing_to_do" and again["already_used"] == 300
    elsewhere = [*argv[:-2], str(tmp_path / "other-work"), "--json"]  # another --work: the same
    assert main(elsewhere) == 4
    assert json.loads(capsys.readouterr().out)["already_used"] == 300
    assert champion_version(url) == 2


def test_no_shift_is_refused_and_the_champion_stays(champion, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'noshift.db'}"
    registered(url, champion)
    log_with_feedback(url, champion, toy_rows(300, seed=11))
    cfg = write_config(tmp_path / "retrain.yaml")
    argv = ["retrain", "clf", "--db", url, "--config", cfg, "--work", str(tmp_path / "w")]
    assert main(argv) == 4
    out, err = capsys.readouterr()
    assert "refused" in out and "not better on the new data" in out
    assert "the champion stays" in err
    assert champion_version(url) == 1


def test_a_bad_override_fails_before_any_work(champion, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'bad.db'}"
    registered(url, champion)
    log_with_feedback(url, champion, shifted_rows(60, seed=9))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"train": {"epochs": -2}}))
    argv = ["retrain", "clf", "--db", url, "--config", str(bad), "--work", str(tmp_path / "w")]
    assert main(argv) == 2
    assert "train.epochs" in capsys.readouterr().err
    assert not any((tmp_path / "w").glob("clf/*/data"))  # nothing prepared
    assert champion_version(url) == 1


def test_nothing_to_do_without_feedback(champion, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    registered(url, champion)
    assert main(["retrain", "clf", "--db", url, "--work", str(tmp_path / "w")]) == 4
    assert "nothing to retrain on" in capsys.readouterr().out
    assert main(["retrain", "nope", "--db", url]) == 2
    assert "nope" in capsys.readouterr().err


def test_a_killed_retrain_leaves_the_champion_and_continues(
    champion, tmp_path, capsys, monkeypatch
):
    from tunelab.runs import retrain as retrain_mod

    url = f"sqlite:///{tmp_path / 'killed.db'}"
    registered(url, champion)
    log_with_feedback(url, champion, shifted_rows(200, seed=8))
    cfg = write_config(tmp_path / "retrain.yaml")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as Ctrl-C or a kill during the evaluation

    monkeypatch.setattr(retrain_mod, "compare", killed)
    argv = ["retrain", "clf", "--db", url, "--config", cfg, "--work", str(tmp_path / "w")]
    assert main(argv) == 130
    assert champion_version(url) == 1  # untouched
    (work,) = (tmp_path / "w" / "clf").iterdir()
    state = json.loads((work / "state.json").read_text())
    assert set(state) >= {"data", "train"} and "eval" not in state
    trained_at = (work / "challenger" / "results.json").stat().st_mtime_ns
    monkeypatch.undo()
    code = main(argv + ["--force"])  # --force changes the decision, not the finished steps' key
    out = capsys.readouterr().out
    assert code == 0 and "train: done before" in out
    assert (work / "challenger" / "results.json").stat().st_mtime_ns == trained_at
    assert champion_version(url) == 2
    assert np.isfinite(json.loads((work / "retrain.json").read_text())["evals"]["new"]["diff"])
