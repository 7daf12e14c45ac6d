"""End to end on the real packaged MiniLM and real SST-2 rows (the demo data shipped in
examples/): defaults alone beat every baseline on a small and on an imbalanced set, and the
saved model loads with `transformers.pipeline` and predicts what `tunelab predict` does."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import REPO, write_jsonl

from tunelab import api

pytestmark = pytest.mark.e2e
SST2 = REPO / "examples" / "data" / "sst2"


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (SST2 / f"{name}.jsonl").read_text().splitlines()]


def _defaults_only(train: Path, output: Path) -> dict:
    """What a user writes who knows nothing but their data: model, files, columns."""
    return {
        "model": "all-minilm-l6-v2",
        "data": {
            "train": str(train),
            "test": str(SST2 / "test.jsonl"),
            "text": "sentence",
            "label": "label",
        },
        "output": str(output),
    }


def _beats_every_baseline(results: dict, metric: str = "f1_macro") -> None:
    tuned = results["test"][metric]
    for name, scores in results["baselines"].items():
        assert tuned > scores["test"][metric], (
            f"fine-tuned {metric} {tuned:.4f} <= {name} {scores['test'][metric]:.4f}"
        )


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("e2e-small")
    train = write_jsonl(root / "train.jsonl", random.Random(0).sample(_rows("train"), 600))
    return root / "run", api.train(_defaults_only(train, root / "run"))


def test_defaults_beat_baselines_on_600_rows(small_run):
    _, results = small_run
    assert results["run"]["method"] == "lora"
    _beats_every_baseline(results)
    assert results["test"]["accuracy"] > 0.75


def test_pipeline_loads_the_model_and_agrees_with_tunelab(small_run):
    from transformers import pipeline

    run, _ = small_run
    texts = [r["sentence"] for r in _rows("test")[:40]]
    ours = api.predict(run / "model", texts)
    theirs = pipeline("text-classification", model=str(run / "model"), device="cpu")(
        texts, truncation=True
    )
    assert [p["label"] for p in ours] == [p["label"] for p in theirs]
    assert [p["score"] for p in ours] == pytest.approx([p["score"] for p in theirs], abs=1e-4)
    # and `tunelab eval` on the test file reproduces the run's own test metrics
    again = api.evaluate(run / "model", SST2 / "test.jsonl")["test"]
    assert again["accuracy"] == pytest.approx(small_run[1]["test"]["accuracy"], abs=1e-9)


def test_defaults_handle_an_imbalanced_set(tmp_path):
    rng = random.Random(1)
    rows = _rows("train")
    neg = [r for r in rows if r["label"] == "negative"]
    pos = [r for r in rows if r["label"] == "positive"]
    train = write_jsonl(
        tmp_path / "train.jsonl", rng.sample(neg, 510) + rng.sample(pos, 90)
    )  # 85 / 15
    results = api.train(_defaults_only(train, tmp_path / "run"))
    assert results["run"]["class_weights"] is not None
    _beats_every_baseline(results)


def test_eval_report_and_explain_on_the_real_run(small_run, tmp_path):
    """`tunelab eval` with slices and `tunelab explain` on the real MiniLM run: the report
    reproduces the run's own test accuracy inside its interval, the length slices count the
    demo file's rows, and IG's attributions add up to the score difference."""
    run, results = small_run
    report = api.evaluate_report(
        run, SST2 / "test.jsonl", group="length", output=tmp_path / "eval", bootstrap=200
    )
    m = report["models"][0]
    acc = m["metrics"]["accuracy"]
    assert acc == pytest.approx(results["test"]["accuracy"], abs=1e-9)
    ci = m["ci"]["accuracy"]
    assert ci["low"] < acc < ci["high"] and ci["high"] - ci["low"] < 0.1  # 872 rows: about ±0.025
    lengths = [r["length"] for r in _rows("test")]
    assert {s["value"]: s["n"] for s in report["slices"]["slices"]} == {
        v: lengths.count(v) for v in set(lengths)
    }
    page = (tmp_path / "eval" / "report.html").read_text()
    assert "Calibration" in page and 'src="data:image/png;base64,' in page

    texts = ["a gripping, beautifully shot film", "dull, lifeless and far too long"]
    rep = api.explain(run, texts, methods=("ig", "occlusion"), output=tmp_path / "x")
    predicted = [p["label"] for p in api.predict(run, texts)]
    assert [t["units"][0]["name"] for t in rep["texts"]] == predicted
    for t in rep["texts"]:
        u = t["units"][0]
        gap = u["score"] - u["baseline_score"]
        assert sum(u["attributions"]["ig"]) == pytest.approx(gap, rel=0.05, abs=1e-2)
    assert (tmp_path / "x" / "explain.html").is_file()
