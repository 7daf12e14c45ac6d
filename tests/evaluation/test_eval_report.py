"""`tunelab eval` reports: per-row outputs that reproduce the plain evaluation, intervals,
paired tests, slices against hand counts, the HTML, comparison checks and CLI exit codes.

Tiny models only: a 2-layer BERT trained for a few steps on toy sentiment rows, random-head
taggers and masked LMs saved as tunelab folders, and the tiny Llama for the generative path.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import toy_ner_rows, toy_rows, write_jsonl

from tunelab import api, cli
from tunelab.errors import ConfigError
from tunelab.evaluation.report.build import evaluate_report, row_outputs
from tunelab.evaluation.scoring.entities import evaluate_token_file
from tunelab.methods.loading import load_trained, write_meta


@pytest.fixture(scope="module")
def run(tiny_model, toy_data, tmp_path_factory):
    from conftest import tiny_config

    out = tmp_path_factory.mktemp("eval-report") / "toyrun"
    api.train(tiny_config(tiny_model, toy_data, out, train={"max_steps": 30, "epochs": 1}))
    return out


@pytest.fixture(scope="module")
def grouped(tmp_path_factory):
    """60 toy rows with a group column (sentence length bucket) and a constant column."""
    rows = toy_rows(60, seed=7)
    for i, r in enumerate(rows):
        r["bucket"] = "long" if len(r["text"].split()) > 8 else "short"
        r["third"] = ["x", "y", "z"][i % 3]
    return write_jsonl(tmp_path_factory.mktemp("grouped") / "test.jsonl", rows)


@pytest.fixture(scope="module")
def report(run, grouped, tmp_path_factory):
    """The run compared with its own model folder, sliced by `third`."""
    out = tmp_path_factory.mktemp("report") / "eval"
    rep = evaluate_report(
        run, grouped, compare=[str(run / "model")], group="third", output=out, bootstrap=200
    )
    return rep, out


def test_metric_fn_on_all_rows_equals_plain_evaluation(run, grouped) -> None:
    trained = load_trained(run)
    out = row_outputs(trained, grouped, "toy")
    plain = api.evaluate(run, grouped)["test"]
    full = out.metric_fn(np.arange(out.n))
    for key in ("accuracy", "f1_macro", "precision_macro", "recall_macro", "f1_weighted"):
        assert full[key] == pytest.approx(plain[key], abs=1e-12), key
    assert full["loss"] == pytest.approx(plain["loss"], rel=1e-5)
    assert out.metrics["confusion_matrix"] == plain["confusion_matrix"]
    # a subset: the same numbers as the plain evaluation of a file holding only those rows
    rows = [json.loads(x) for x in grouped.read_text().splitlines()]
    idx = np.array([0, 3, 4, 10, 11, 12, 20, 31, 40, 41, 59])
    sub = write_jsonl(grouped.parent / "sub.jsonl", [rows[i] for i in idx])
    plain_sub = api.evaluate(run, sub)["test"]
    assert out.metric_fn(idx)["f1_macro"] == pytest.approx(plain_sub["f1_macro"], abs=1e-6)
    assert out.metric_fn(idx)["accuracy"] == pytest.approx(plain_sub["accuracy"])
    assert out.correct.sum() == round(plain["accuracy"] * plain["n"])


def test_report_intervals_self_comparison_and_mcnemar(report) -> None:
    rep, _ = report
    assert rep["rows"] == 60 and rep["task"] == "classification"
    assert [m["name"] for m in rep["models"]] == ["toyrun", "toyrun-2"]
    for m in rep["models"]:
        for metric in rep["headline"]:
            c = m["ci"][metric]
            assert c["low"] <= c["value"] <= c["high"], metric
    (cmp,) = rep["comparison"]
    assert cmp["baseline"] == "toyrun"
    for metric in rep["headline"]:
        t = cmp["tests"][metric]
        assert t["diff"] == 0 and t["p_value"] == 1.0 and t["low"] == t["high"] == 0
    assert cmp["tests"]["mcnemar"] == {"a_only": 0, "b_only": 0, "p_value": 1.0}
    cal = rep["models"][0]["details"]["calibration"]
    assert 0 <= cal["ece"] <= 1 and sum(b["count"] for b in cal["bins"]) == 60


def test_slices_match_a_hand_count(report, run, grouped) -> None:
    rep, _ = report
    rows = [json.loads(x) for x in grouped.read_text().splitlines()]
    preds = api.predict(run, [r["text"] for r in rows])
    right = [p["label"] == r["label"] for p, r in zip(preds, rows)]
    hand = {
        g: np.mean([ok for ok, r in zip(right, rows) if r["third"] == g]) for g in ("x", "y", "z")
    }
    sl = rep["slices"]
    assert sl["column"] == "third" and {s["value"]: s["n"] for s in sl["slices"]} == dict.fromkeys(
        "xyz", 20
    )
    got = {s["value"]: s["models"]["toyrun"]["accuracy"]["value"] for s in sl["slices"]}
    assert got == pytest.approx(hand)
    assert sl["gaps"]["toyrun"]["accuracy"]["gap"] == pytest.approx(
        max(hand.values()) - min(hand.values())
    )


def test_report_files_html_sections_and_embedded_images(report) -> None:
    rep, out = report
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json"]
    assert json.loads((out / "report.json").read_text()) == rep
    page = (out / "report.html").read_text()
    heads = re.findall(r"<h2>(.*?)</h2>", page)
    assert heads == ["Metrics", "Classification", "Slices by third", "Training diagnosis"]
    srcs = re.findall(r"""src=['"]([^'"]*)['"]""", page)
    assert len(srcs) >= 4  # 2 confusion matrices, reliability, diagnosis
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<link" not in page and "<script" not in page
    assert "Most confident mistakes" in page and "ECE" in page


def test_html_escapes_user_strings(run, grouped, tmp_path) -> None:
    rep = evaluate_report(
        run, grouped, names=["<b>x</b>"], output=tmp_path / "o", bootstrap=0, group="bucket"
    )
    page = (tmp_path / "o" / "report.html").read_text()
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert rep["models"][0]["ci"]["accuracy"]["low"] is None  # --bootstrap 0: no intervals


def test_compare_refuses_other_labels_and_plain_encoders(run, grouped, tiny_model, tmp_path):
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig.from_pretrained(tiny_model)
    config.id2label = {0: "neg", 1: "neutral", 2: "pos"}
    config.label2id = {v: k for k, v in config.id2label.items()}
    other = tmp_path / "other"
    BertForSequenceClassification(config).save_pretrained(other)
    load_trained(tiny_model).tokenizer.save_pretrained(other)
    with pytest.raises(ConfigError, match=r"--compare: .*\['neg', 'neutral', 'pos'\].*negative"):
        evaluate_report(run, grouped, compare=[str(other)], write=False, bootstrap=0)
    with pytest.raises(ConfigError, match="--compare: .*plain encoder.*trained run"):
        evaluate_report(run, grouped, compare=[str(tiny_model)], write=False, bootstrap=0)
    with pytest.raises(ConfigError, match="MODEL: .*no task head"):
        evaluate_report(tiny_model, grouped, write=False, bootstrap=0)


def test_cli_exit_codes_and_table(run, grouped, tmp_path, capsys) -> None:
    out = tmp_path / "cli"
    argv = ["eval", str(run), "--data", str(grouped), "--output", str(out), "--bootstrap", "50"]
    assert cli.main(argv + ["--group", "bucket"]) == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "95% CI" in printed and "slices by bucket" in printed
    assert f"report: {out / 'report.html'}" in printed
    assert cli.main(argv + ["--group", "domain"]) == 2
    err = capsys.readouterr().err
    assert str(grouped) in err and "'domain'" in err
    assert cli.main(argv + ["--compare", str(tmp_path / "nowhere")]) == 2
    assert cli.main(["eval", str(run), "--data", str(tmp_path / "none.jsonl")]) == 2


@pytest.fixture(scope="module")
def tagger(tiny_model, tmp_path_factory):
    """A random-head tiny tagger saved as a tunelab token-classification folder."""
    import torch
    from transformers import BertConfig, BertForTokenClassification

    names = ["O", "B-LOC", "B-PER"]
    config = BertConfig.from_pretrained(tiny_model)
    config.id2label = dict(enumerate(names))
    config.label2id = {n: i for i, n in enumerate(names)}
    torch.manual_seed(3)
    out = tmp_path_factory.mktemp("tagger")
    BertForTokenClassification(config).save_pretrained(out)
    load_trained(tiny_model).tokenizer.save_pretrained(out)
    labels = {"names": names, "multi_label": False, "values": None}
    columns = {"text": "tokens", "label": "ner_tags", "text_pair": None}
    write_meta(
        out,
        {"task": "token-classification", "labels": labels, "max_length": 64, "columns": columns},
    )
    return out


def test_ner_rows_reproduce_entity_metrics(tagger, tmp_path) -> None:
    rows = toy_ner_rows(40, seed=5)
    data = write_jsonl(tmp_path / "ner.jsonl", rows)
    trained = load_trained(tagger)
    out = row_outputs(trained, data, "tagger")
    plain = evaluate_token_file(trained, data)
    full = out.metric_fn(np.arange(out.n))
    for key in ("f1", "precision", "recall", "accuracy", "loss"):
        assert full[key] == pytest.approx(plain[key], rel=1e-6), key
    idx = np.array([1, 1, 4, 7, 7, 7, 20, 39])  # a resample repeats sentences
    sub = write_jsonl(tmp_path / "sub.jsonl", [rows[i] for i in idx])
    again = evaluate_token_file(trained, sub)
    assert out.metric_fn(idx)["f1"] == pytest.approx(again["f1"])
    assert out.metric_fn(idx)["recall"] == pytest.approx(again["recall"])
    rep = evaluate_report(tagger, data, output=tmp_path / "r", bootstrap=100)
    assert rep["models"][0]["details"]["per_type"] == plain["per_type"]
    page = (tmp_path / "r" / "report.html").read_text()
    assert "<h2>Entities</h2>" in page and "PER" in page


def test_mlm_rows_reproduce_the_masked_lm_score(tiny_model, tmp_path) -> None:
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from tunelab.evaluation.scoring.mlm import score_mlm_features
    from tunelab.tasks import mlm

    torch.manual_seed(0)
    folder = tmp_path / "mlm"
    BertForMaskedLM(BertConfig.from_pretrained(tiny_model)).save_pretrained(folder)
    load_trained(tiny_model).tokenizer.save_pretrained(folder)
    write_meta(folder, {"task": "mlm", "max_length": 24, "columns": {"text": "text"}})
    rows = toy_rows(30, seed=2)
    rows[4]["text"] = ""  # a blank row is no document
    data = write_jsonl(tmp_path / "docs.jsonl", rows)
    trained = load_trained(folder)
    out = row_outputs(trained, data, "mlm", batch_size=8)
    assert out.n == 29 and out.details["rows"][4] == 6  # file rows, 1-based, row 5 skipped
    feats = mlm.featurize(mlm.read_texts("t", data, "text"), trained.tokenizer, 24)
    plain = score_mlm_features(trained.model, feats, 8, trained.tokenizer.pad_token_id)
    full = out.metric_fn(np.arange(out.n))
    assert out.metrics["tokens"] == plain["tokens"]
    for key in ("loss", "perplexity", "masked_accuracy"):
        assert full[key] == pytest.approx(plain[key], rel=1e-5), key


def test_causal_lm_report_against_a_base_model(tiny_llama, alpaca, tmp_path) -> None:
    _, dev = alpaca
    rep = evaluate_report(
        tiny_llama,
        dev,
        compare=[str(tiny_llama)],
        output=tmp_path / "lm",
        bootstrap=50,
        generate_rows=2,
        generation={"max_new_tokens": 4},
    )
    assert rep["task"] == "causal-lm" and len(rep["models"]) == 2
    (cmp,) = rep["comparison"]
    assert cmp["tests"]["perplexity"]["diff"] == 0
    m = rep["models"][0]["ci"]["perplexity"]
    assert m["low"] <= m["value"] <= m["high"]
    page = (tmp_path / "lm" / "report.html").read_text()
    assert "<h2>Generation</h2>" in page


def test_label_metric_fns_equal_classification_metrics_on_resamples() -> None:
    from tunelab.evaluation.report.rows_label import multi_label_metric_fn, single_label_metric_fn
    from tunelab.metrics.classification import classification_metrics

    rng = np.random.default_rng(0)
    names = ["a", "b", "c", "d"]
    y = rng.integers(0, 3, 50)  # class "d" never occurs: scored as 0, as sklearn does
    pred = np.where(rng.random(50) < 0.7, y, rng.integers(0, 4, 50))
    nll = rng.random(50)
    fn = single_label_metric_fn(y, pred, nll, 4)
    ym = (rng.random((50, 4)) < 0.4).astype(np.float32)
    pm = np.where(rng.random((50, 4)) < 0.8, ym, 1 - ym)
    fm = multi_label_metric_fn(ym, pm, nll)
    for idx in (np.arange(50), rng.integers(0, 50, 50), np.array([3, 3, 3, 7])):
        want = classification_metrics(y[idx], pred[idx], names)
        got = fn(idx)
        for key in ("accuracy", "f1_macro", "precision_macro", "recall_macro", "f1_weighted"):
            assert got[key] == pytest.approx(want[key]), key
        assert got["loss"] == pytest.approx(nll[idx].mean())
        want = classification_metrics(ym[idx], pm[idx], names, multi_label=True)
        got = fm(idx)
        for key in ("accuracy", "f1_micro", "f1_macro", "hamming_loss"):
            assert got[key] == pytest.approx(want[key]), key
