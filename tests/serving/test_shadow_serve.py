"""Shadow mode on a real `tunelab serve` process: `--shadow challenger@clf` answers every
classified input unseen. The replies are the served model's alone; the shadow's answers are
rows beside the log, each the shadow model's own prediction for that input, marked with
whether the two agree; /metrics counts them; a promotion of the challenger alias swaps the
shadow live; `tunelab shadow clf` reports the agreement and, on inputs with feedback, the
real accuracies. Bad --shadow arguments are one line and exit 2 before any weights load."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest
from conftest import FILLER, NEG, POS, tiny_config
from serving_helpers import REPO, TUNELAB, running_server, wait_for

# sentiment words and filler-only texts (where differently trained runs tend to differ)
TEXTS = [
    " ".join(
        [
            *FILLER[i % len(FILLER) : i % len(FILLER) + 4],
            *([POS[i % len(POS)]] if i % 3 == 0 else []),
            *([NEG[i % len(NEG)]] if i % 3 == 1 else []),
        ]
    )
    for i in range(20)
]


@pytest.fixture(scope="module")
def runs(tiny_model, toy_data, tmp_path_factory):
    """Three tiny classifier runs that differ: a (1 epoch) has barely learned, b and c (3
    epochs, other seeds) have."""
    from tunelab import api

    root = tmp_path_factory.mktemp("shadow-runs")
    for name, seed, epochs in (("a", 0, 1), ("b", 1, 3), ("c", 2, 3)):
        train = {"epochs": epochs, "seed": seed}
        api.train(tiny_config(tiny_model, toy_data, root / name, train=train))
    return {n: root / n for n in "abc"}


def _labels(run, texts) -> list[str]:
    from tunelab.inference.forward import predict_texts
    from tunelab.methods.loading import load_trained

    return [r["label"] for r in predict_texts(load_trained(run), texts)]


def _shadow_rows(engine) -> dict[str, dict]:
    import sqlalchemy as sa

    from tunelab.store.tables import shadow_predictions

    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(shadow_predictions))]
    return {r["prediction_id"]: r for r in rows}


def _counter(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(f'{name}_total{{model="clf"}}'):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.e2e  # three runs, a server, a registry swap and the report: a few minutes
def test_the_shadow_answers_unseen_is_logged_swapped_and_reported(runs, tmp_path):
    from tunelab.cli.commands import main
    from tunelab.store.db import open_db
    from tunelab.store.feedback import add_feedback, logged_input
    from tunelab.store.registry import add_version, promote

    db = f"sqlite:///{tmp_path / 'log.db'}"
    engine = open_db(db)
    add_version(engine, "clf", runs["a"], alias="champion")
    add_version(engine, "clf", runs["b"], alias="challenger")
    add_version(engine, "clf", runs["c"])
    served_labels, b_labels, c_labels = (_labels(runs[k], TEXTS) for k in "abc")
    assert served_labels != b_labels, "the test needs runs that disagree somewhere"

    args = ["champion@clf", "--shadow", "challenger@clf", "--db", db, "--reload-every-s", "0.5"]
    with running_server(args, tmp_path / "server.log") as url:
        models = httpx.get(f"{url}/v1/models").json()["data"]
        assert models[0]["shadow"]["reference"] == "challenger@clf"
        assert models[0]["shadow"]["version"] == 2
        ids = []
        for i in range(0, 10, 5):  # batches, then single inputs
            reply = httpx.post(
                f"{url}/v1/classify", json={"model": "clf", "input": TEXTS[i : i + 5]}, timeout=60
            ).json()
            assert [d["label"] for d in reply["data"]] == served_labels[i : i + 5]
            ids += [d["id"] for d in reply["data"]]
        for text, label in zip(TEXTS[10:12], served_labels[10:12]):
            r = httpx.post(f"{url}/v1/classify", json={"model": "clf", "input": text}, timeout=60)
            assert r.json()["data"][0]["label"] == label  # the served model's, not the shadow's
            ids.append(r.headers["x-request-id"])

        rows = wait_for(lambda: len(_shadow_rows(engine)) >= 12 and _shadow_rows(engine), "rows")
        for i, pid in enumerate(ids):
            row = rows[pid]
            assert row["label"] == b_labels[i]  # the shadow's own prediction of that input
            assert row["agrees"] == (b_labels[i] == served_labels[i])
            assert row["status"] == 200 and row["registry_version"] == 2
        agreed = sum(b == s for b, s in zip(b_labels[:12], served_labels[:12]))
        assert _counter(url, "tunelab_shadow_compared") == 12
        assert _counter(url, "tunelab_shadow_agreed") == agreed

        # the challenger alias moves to version 3: the shadow follows, the served model stays
        promote(engine, "clf", 3, alias="challenger")
        wait_for(
            lambda: httpx.get(f"{url}/v1/models").json()["data"][0]["shadow"]["version"] == 3,
            "the shadow swap",
        )
        r = httpx.post(f"{url}/v1/classify", json={"model": "clf", "input": TEXTS[12]}, timeout=60)
        assert r.json()["data"][0]["label"] == served_labels[12]
        late = r.headers["x-request-id"]
        row = wait_for(lambda: _shadow_rows(engine).get(late), "the new shadow's row")
        assert row["registry_version"] == 3 and row["label"] == c_labels[12]
    assert "clf shadow now version 3 (was 2)" in (tmp_path / "server.log").read_text()

    # feedback on the first 8 inputs: the report's real accuracies are those of the rows
    truth = ["positive" if i % 2 else "negative" for i in range(8)]
    for pid, label in zip(ids[:8], truth):
        add_feedback(engine, pid, {"label": label}, logged_input(engine, pid), source="test")
    engine.dispose()
    out = subprocess.run(
        [*TUNELAB, "shadow", "clf", "--db", db, "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    groups = json.loads(out.stdout)["groups"]
    assert [g["registry_version"] for g in groups] == [2, 3]
    first = groups[0]
    assert first["n_answered"] == 12 and first["agreement"] == pytest.approx(agreed / 12)
    assert first["agreement_low"] <= first["agreement"] <= first["agreement_high"]
    fb = first["feedback"]
    assert fb["n"] == 8
    assert fb["served_accuracy"] == pytest.approx(
        sum(s == t for s, t in zip(served_labels, truth)) / 8
    )
    assert fb["shadow_accuracy"] == pytest.approx(sum(b == t for b, t in zip(b_labels, truth)) / 8)
    est = first["estimate"]  # the tiny runs have a monitor reference: a label-free estimate
    assert est is not None and est["n"] == 12
    assert est["low"] <= est["diff"] <= est["high"]
    assert main(["shadow", "nobody", "--db", db]) == 2


def test_bad_shadow_arguments_fail_before_loading(runs, tiny_llama, tmp_path):
    db = f"sqlite:///{tmp_path / 'log.db'}"
    cases = [
        ([f"clf={runs['a']}", "--shadow", f"other={runs['b']}"], "'other', which is not served"),
        ([f"clf={runs['a']}", "--shadow", f"clf={runs['b']}", "--no-log"], "drop --no-log"),
        ([f"clf={runs['a']}", "--shadow", f"clf={tiny_llama}"], "must answer the same route"),
        ([f"chat={tiny_llama}", "--shadow", f"chat={tiny_llama}"], "shadows run beside"),
    ]
    for args, message in cases:
        out = subprocess.run(
            [*TUNELAB, "serve", *args, "--db", db, "--port", "1"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=300,
        )
        assert out.returncode == 2, (args, out.stderr)
        assert message in out.stderr and "loading" not in out.stderr, out.stderr
