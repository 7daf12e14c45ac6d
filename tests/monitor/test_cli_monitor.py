"""`tunelab monitor` end to end on a real SQLite log: rows written through the store's writer
as serving writes them (the served model's own predictions and embeddings), then the command
in-process: exit 0 on traffic like the run's held-out rows, 3 with alerts on foreign texts,
2 with one line on stderr for bad input."""

from __future__ import annotations

import json
import random
import shutil
import time
import uuid

import numpy as np
import pytest
import yaml
from monitor_run_helpers import train_tiny_run

from tunelab.cli.commands import main

FOREIGN = (
    "quarterly earnings beat analyst expectations as bond yields fell sharply overnight",
    "the enzyme catalyses phosphorylation of serine residues in the mitochondrial matrix",
    "Kubernetes pods restarted after the ingress controller exhausted its file descriptors",
    "der Zug nach München fährt heute wegen Bauarbeiten zwanzig Minuten später ab",
    "preheat the oven to 200 degrees and whisk three eggs with flour and butter",
)


@pytest.fixture(scope="module")
def run_dir(tiny_model, toy_data, tmp_path_factory):
    return train_tiny_run(tiny_model, toy_data, tmp_path_factory.mktemp("cli-run"))


def _served_rows(run_dir, texts: list[str], name: str, t0: float, meta=None) -> list[dict]:
    """Log rows as `tunelab serve --db` writes them for a classifier."""
    from tunelab.inference.forward import predict_texts
    from tunelab.methods.loading import load_trained

    preds = predict_texts(load_trained(run_dir), texts, embed=True)
    rows = []
    for i, (text, p) in enumerate(zip(texts, preds)):
        rid = uuid.uuid4().hex
        out = {k: p[k] for k in ("label", "score", "scores")}
        rows.append(
            {
                "id": rid,
                "request_id": rid,
                "time": t0 + i,
                "model": name,
                "version": "test",
                "kind": "classify",
                "task": "classification",
                "input_hash": str(hash(text)),
                "text": text,
                "pair": None,
                "output": out,
                "label": p["label"],
                "confidence": p["score"],
                "latency_ms": 5.0 + i % 7,
                "status": 200,
                "error": None,
                "n_tokens": p["n_tokens"],
                "n_unk": p["n_unk"],
                "embedding": np.asarray(p["embedding"], np.float16).tobytes(),
                "meta": meta(i) if meta else None,
            }
        )
    return rows


def _write(url: str, rows: list[dict]) -> None:
    from tunelab.store.log_writer import PredictionLog

    log = PredictionLog(url)
    log.start()
    log.write(rows)
    log.close()
    assert log.written == len(rows)


@pytest.fixture(scope="module")
def db(run_dir, toy_data, tmp_path_factory):
    """One log: 'clf' got the run's held-out test rows (no shift), 'shifted' (the same model,
    logged under another name) got foreign texts."""
    url = f"sqlite:///{tmp_path_factory.mktemp('log') / 'tunelab.db'}"
    held = [json.loads(x)["text"] for x in toy_data["test"].read_text().splitlines()]
    random.Random(0).shuffle(held)
    t0 = time.time() - 3600
    _write(url, _served_rows(run_dir, held, "clf", t0, meta=lambda i: {"group": "ab"[i % 2]}))
    rng = random.Random(1)
    foreign = [" ".join(rng.sample(FOREIGN, 2)) for _ in range(80)]
    _write(url, _served_rows(run_dir, foreign, "shifted", t0))
    return url


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["monitor", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_no_shift_exits_0_and_writes_the_report(run_dir, db, tmp_path, capsys):
    code, out, err = _run(capsys, run_dir, "--db", db, "--window", 40, "--out", tmp_path)
    assert code == 0, err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["model"] == "clf" and report["alerts"] == []
    assert len(report["windows"]) == 2
    for w in report["windows"]:
        assert w["ops"]["n"] == 40 and 0 <= w["embedding"]["mmd_p"] <= 1
        assert w["prediction"]["label_share"] and w["estimate"]["accuracy"] is not None
    assert set(report["slices"]["group"]) == {"a", "b"}
    assert (tmp_path / "report.html").read_text().count("data:image/png") >= 3
    assert str(tmp_path / "report.html") in err


def test_feedback_labels_show_the_real_accuracy_and_the_estimates_error(
    run_dir, db, toy_data, tmp_path, capsys
):
    from tunelab.store.predictions import read_predictions

    url = f"sqlite:///{tmp_path / 'copy.db'}"
    shutil.copy(db.removeprefix("sqlite:///"), tmp_path / "copy.db")
    truth = {}
    for line in toy_data["test"].read_text().splitlines():
        r = json.loads(line)
        truth[r["text"]] = r["label"]
    rows = read_predictions(url, model="clf")
    labelled = rows[::2]  # feedback on half the traffic
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "request_id,label\n" + "".join(f"{r['id']},{truth[r['text']]}\n" for r in labelled)
    )
    assert main(["feedback", "import", str(csv), "--db", url]) == 0
    capsys.readouterr()
    code, out, err = _run(capsys, run_dir, "--db", url, "--window", 40, "--json", "--out", tmp_path)
    assert code == 0, err
    windows = json.loads(out)["windows"]
    for i, w in enumerate(windows):
        part = [r for r in labelled if r in rows[i * 40 : (i + 1) * 40]]
        est = w["estimate"]
        assert est["n_labelled"] == len(part) == 20
        real = np.mean([r["label"] == truth[r["text"]] for r in part])
        assert est["true_accuracy"] == pytest.approx(real)
        assert est["estimate_error"] == pytest.approx(est["labelled_estimate"] - real)
    html = (tmp_path / "report.html").read_text()
    assert "estimate error" in html and "labelled rows" in html


def test_shift_exits_3_with_alerts(run_dir, db, tmp_path, capsys):
    argv = [run_dir, "--name", "shifted", "--db", db, "--window", 80, "--out", tmp_path]
    code, out, err = _run(capsys, *argv, "--json")
    assert code == 3
    report = json.loads(out)  # --json: the report on stdout
    assert report["alerts"], report["windows"]
    stats = {a["stat"] for a in report["alerts"]}
    assert any(s.startswith("embedding.") for s in stats), stats
    assert all(a["model"] == "shifted" and a["window"] == 0 for a in report["alerts"])
    assert json.loads((tmp_path / "report.json").read_text()) == report
    assert "embedding" in err  # the stderr sink


def test_rules_file_and_the_run_configs_monitor_section(run_dir, db, tmp_path, capsys):
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump([{"stat": "ops.n", "op": ">=", "value": 1, "name": "rows"}]))
    code, out, _ = _run(capsys, run_dir, "--db", db, "--rules", rules, "--json", "--out", tmp_path)
    assert code == 3 and [a["rule"] for a in json.loads(out)["alerts"]][:1] == ["rows"]

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    cfg = yaml.safe_load((copy / "config.yaml").read_text())
    cfg["monitor"] = {"rules": [{"stat": "ops.latency_p50_ms", "op": ">", "value": 0}]}
    (copy / "config.yaml").write_text(yaml.safe_dump(cfg))
    code, out, _ = _run(capsys, copy, "--name", "clf", "--db", db, "--json", "--out", tmp_path)
    assert code == 3
    assert {a["stat"] for a in json.loads(out)["alerts"]} == {"ops.latency_p50_ms"}


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--name", "nobody"], "clf"),  # unknown model: the logged names are listed
        (["--since", "2100-01-01T00:00:00"], "empty window"),
        (["--db", "postgresql://tunelab:pw@127.0.0.1:1/x"], "127.0.0.1"),
        (["--last", "0"], "--last"),
    ],
)
def test_bad_input_exits_2_with_one_line(run_dir, db, tmp_path, capsys, extra, needle):
    argv = [run_dir, "--db", db, "--out", tmp_path, *extra]
    code, out, err = _run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], err
    assert "pw" not in err  # the password is masked


def test_bad_rules_file_exits_2(run_dir, db, tmp_path, capsys):
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump([{"stat": "embedding.mmd_p", "op": "~", "value": 1}]))
    code, _, err = _run(capsys, run_dir, "--db", db, "--rules", rules, "--out", tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "rules.yaml" in err, err


def test_every_parses_durations():
    from tunelab.cli.monitor import parse_every, parse_time
    from tunelab.errors import ConfigError

    assert [parse_every(v) for v in ("30s", "10m", "1h", "2")] == [30, 600, 3600, 2]
    with pytest.raises(ConfigError):
        parse_every("soon")
    assert parse_time("1700000000", "--since") == 1_700_000_000
    assert parse_time("2023-11-14T22:13:20+00:00", "--since") == 1_700_000_000


def test_every_alerts_a_window_once_and_ctrl_c_exits_0(run_dir, db, tmp_path, capsys, monkeypatch):
    from tunelab.cli import monitor as cli_monitor

    rounds = []

    def sleep(seconds):
        rounds.append(seconds)
        if len(rounds) == 2:  # after the second round: the user presses Ctrl-C
            raise KeyboardInterrupt

    monkeypatch.setattr(cli_monitor.time, "sleep", sleep)
    argv = [run_dir, "--name", "shifted", "--db", db, "--window", 80, "--out", tmp_path]
    code, _, err = _run(capsys, *argv, "--every", "10m")
    assert code == 0 and rounds == [600, 600]
    sent = [line for line in err.splitlines() if line.startswith("alert:")]
    report = json.loads((tmp_path / "report.json").read_text())
    assert sent and len(sent) == len(report["alerts"])  # the second round sent nothing again
    assert err.count("report:") == 2  # two rounds, each wrote the report
