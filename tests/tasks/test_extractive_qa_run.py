"""Extractive QA through the Task protocol: `tunelab train` on SQuAD rows with a tiny QA model,
results.json with EM/F1 and the lexical-overlap baseline, the saved model loaded back,
`predict` spans that slice the context, `tunelab eval`, and a `tunelab serve` process
answering /v1/answer."""

from __future__ import annotations

import json

import httpx
import pytest
from conftest import SHARED_DATASETS, tiny_config, write_jsonl

from tunelab import api
from tunelab.config import RunConfig
from tunelab.errors import ConfigError
from tunelab.tasks import REGISTRY, get_task

SQUAD = SHARED_DATASETS / "squad" / "validation.jsonl"
CONTEXT = "Super Bowl 50 was won by the Denver Broncos, who beat the Carolina Panthers 24–10."


@pytest.fixture(scope="module")
def squad_files(tmp_path_factory) -> dict:
    if not SQUAD.is_file():
        pytest.skip("../shared/datasets is not beside the repo")
    rows = [json.loads(line) for line in SQUAD.read_text(encoding="utf-8").splitlines()[:400]]
    root = tmp_path_factory.mktemp("squad")
    # short contexts, so the tiny model (128 positions) sees whole paragraphs in few windows
    short = [r for r in rows if len(r["context"]) < 700]
    return {
        "train": write_jsonl(root / "train.jsonl", short[:40]),
        "validation": write_jsonl(root / "validation.jsonl", short[:40:2]),
    }


def _qa_config(tiny_model, files, output, **sections) -> dict:
    cfg = tiny_config(tiny_model, files, output, **sections)
    cfg["task"] = "extractive-qa"
    cfg["data"] = {**{k: str(v) for k, v in files.items()}, "doc_stride": 32}
    cfg["train"].update(epochs=12, batch_size=8, lr=3e-3)
    return cfg


@pytest.fixture(scope="module")
def qa_run(tiny_model, squad_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("qa-run") / "run"
    results = api.train(_qa_config(tiny_model, squad_files, out))
    return out, results


def test_the_task_is_registered_and_the_config_lists_every_registered_task():
    from tunelab.config.schema import TASKS

    assert set(TASKS) == set(REGISTRY)
    task = get_task("extractive-qa")
    assert (task.head_kind, task.serve_kind, task.default_metric) == ("span", "answer", "f1")
    assert not task.labelled and task.score and task.baselines and task.predict_texts


def test_the_config_takes_the_qa_data_keys_and_checks_them(tiny_model, squad_files, tmp_path):
    cfg = _qa_config(tiny_model, squad_files, tmp_path / "run")
    cfg["data"].update(question="q", context="c", answers="a")
    d = RunConfig(**cfg).data
    assert (d.question, d.context, d.answers, d.doc_stride) == ("q", "c", "a", 32)
    from tunelab.config.load import validate_config

    cfg["data"]["doc_stride"] = 0
    with pytest.raises(ConfigError, match="data.doc_stride"):
        validate_config(cfg)


def test_a_tiny_qa_run_learns_and_reports_em_f1_and_the_baseline(qa_run):
    out, results = qa_run
    train_loss = [
        r["loss"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
        if r["split"] == "train"
    ]  # fmt: skip
    assert train_loss[-1] < 0.7 * train_loss[0], train_loss
    written = json.loads((out / "results.json").read_text())
    v = written["validation"]
    assert 0 <= v["exact_match"] <= v["f1"] <= 1 and v["loss"] > 0
    assert v["f1"] > 0.3  # it has learnt its training questions (validation repeats half)
    lexical = written["baselines"]["lexical_overlap"]["validation"]
    assert set(lexical) >= {"exact_match", "f1"} and lexical["n"] == 20
    assert written["run"]["task"] == "extractive-qa"
    meta = json.loads((out / "model" / "tunelab.json").read_text())
    assert meta["task"] == "extractive-qa" and meta["doc_stride"] == 32
    assert meta["columns"]["question"] == "question" and meta["max_length"] == 128


def test_the_saved_model_loads_back_and_scores_and_predicts_the_same(qa_run, squad_files):
    from tunelab.methods.loading import load_trained
    from tunelab.tasks import extractive_qa as qa

    out, results = qa_run
    trained = load_trained(out)
    assert type(trained.model).__name__ == "BertForQuestionAnswering"
    examples = qa.read_examples(squad_files["validation"])
    split = qa.QASplit("validation", "v", examples, doc_stride=32)
    f = qa.featurize_split(split, trained.tokenizer, trained.max_length)
    again = qa.score_model(trained.model, f, split, None, 16, trained.tokenizer.pad_token_id)
    assert again["f1"] == pytest.approx(results["validation"]["f1"], abs=1e-6)
    questions, contexts = [e.question for e in examples], [e.context for e in examples]
    first = api.predict(out, questions, contexts)
    assert first == api.predict(out / "model", questions, contexts)
    assert qa.score(first, examples)["f1"] == pytest.approx(again["f1"], abs=1e-6)


def test_predict_gives_offsets_inside_the_context_that_slice_to_the_answer(qa_run, squad_files):
    out, _ = qa_run
    rows = [json.loads(x) for x in squad_files["validation"].read_text().splitlines()]
    questions = [r["question"] for r in rows] + ["Who beat the Carolina Panthers?"]
    contexts = [r["context"] for r in rows] + [CONTEXT]
    preds = api.predict(out, questions, contexts)
    assert len(preds) == len(questions)
    for p, c in zip(preds, contexts, strict=True):
        assert set(p) == {"answer", "start", "end", "score", "probability"}
        assert 0 <= p["start"] < p["end"] <= len(c) and c[p["start"] : p["end"]] == p["answer"]
        assert 0 < p["probability"] <= 1
    from tunelab.errors import TunelabError

    with pytest.raises(TunelabError, match="contexts"):
        api.predict(out, ["Who?"], None)


def test_lora_runs_save_and_load_back_merged_and_unmerged(tiny_model, squad_files, tmp_path):
    from tunelab.methods.loading import load_trained

    for merge in (True, False):
        out = tmp_path / f"lora-{merge}"
        cfg = _qa_config(
            tiny_model, squad_files, out, method={"name": "lora", "r": 4, "merge": merge}
        )
        cfg["train"].update(epochs=None, max_steps=3)
        results = api.train(cfg)
        names = {p.name for p in (out / "model").iterdir()}
        assert ("adapter_config.json" in names) == (not merge)
        trained = load_trained(out)
        rows = [json.loads(x) for x in squad_files["validation"].read_text().splitlines()]
        preds = api.predict(out, [r["question"] for r in rows], [r["context"] for r in rows])
        from tunelab.tasks import extractive_qa as qa

        examples = qa.read_examples(squad_files["validation"])
        f1 = qa.score(preds, examples)["f1"]
        assert f1 == pytest.approx(results["validation"]["f1"], abs=1e-6), trained.meta


def test_eval_writes_a_report_with_em_and_f1(qa_run, squad_files, tmp_path):
    out, results = qa_run
    report = api.evaluate_report(
        out, squad_files["validation"], output=tmp_path / "eval", bootstrap=50
    )
    assert (tmp_path / "eval" / "report.json").is_file()
    assert (tmp_path / "eval" / "report.html").is_file()
    text = json.dumps(report)
    assert '"exact_match"' in text and '"f1"' in text
    assert f"{results['validation']['f1']:.6f}"[:6] in text  # the same F1 as training's


@pytest.mark.e2e
def test_a_server_process_answers_v1_answer(qa_run, tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serving"))
    from serving_helpers import running_server

    out, _ = qa_run
    with running_server([f"qa={out}"], tmp_path / "serve.log") as url:
        r = httpx.post(
            f"{url}/v1/answer", json={"question": "Who won?", "context": CONTEXT}, timeout=60
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert CONTEXT[body["start"] : body["end"]] == body["answer"] and body["model"] == "qa"
        many = httpx.post(
            f"{url}/v1/answer",
            json={"model": "qa", "question": ["Who won?", "Who lost?"], "context": [CONTEXT] * 2},
            timeout=60,
        ).json()
        assert [d["index"] for d in many["data"]] == [0, 1]
        for bad in (
            {"question": "Who won?"},
            {"question": "", "context": CONTEXT},
            {"question": ["a", "b"], "context": [CONTEXT]},
            {"model": "other", "question": "a", "context": CONTEXT},
        ):
            r = httpx.post(f"{url}/v1/answer", json=bad, timeout=60)
            assert 400 <= r.status_code < 500, (bad, r.text)
        wrong = httpx.post(f"{url}/v1/classify", json={"model": "qa", "input": "x"}, timeout=60)
        assert wrong.status_code == 400 and "/v1/answer" in wrong.text
