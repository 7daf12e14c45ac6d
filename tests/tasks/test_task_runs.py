"""Token classification and masked-LM runs through the whole pipeline (api.train -> saved
model -> predict/evaluate), on the tiny model."""

from __future__ import annotations

import pytest
from conftest import tiny_config, toy_ner_files, toy_rows

from tunelab import api


@pytest.mark.parametrize("method", ["full", "lora"])
def test_token_classification_run(tiny_model, tmp_path, method):
    files = toy_ner_files(tmp_path, 300, 60)
    cfg = tiny_config(
        tiny_model,
        files,
        tmp_path / "run",
        task="token-classification",
        data={"text": "tokens", "label": "ner_tags"},
        method={"name": method},
        train={"epochs": 8, "lr": 5e-3 if method == "full" else 2e-2},
        eval={"baselines": ["majority"]},
    )
    results = api.train(cfg)
    assert results["test"]["f1"] > 0.8
    assert "lexicon" in results["baselines"]
    again = api.evaluate(tmp_path / "run" / "model", files["test"])["test"]
    assert again["f1"] == pytest.approx(results["test"]["f1"])
    pred = api.predict(tmp_path / "run" / "model", ["alice went to paris"])[0]
    assert [(e["type"], e["text"], e["start"], e["end"]) for e in pred["entities"]] == [
        ("PER", "alice", 0, 5),
        ("LOC", "paris", 14, 19),
    ]


def test_mlm_run_lowers_perplexity_and_feeds_a_classifier(tiny_model, toy_data, tmp_path):
    texts = [r["text"] for r in toy_rows(400, seed=7)]
    (tmp_path / "domain.txt").write_text("\n".join(texts) + "\n")
    cfg = tiny_config(
        tiny_model,
        {"train": tmp_path / "domain.txt", "validation": tmp_path / "domain.txt"},
        tmp_path / "mlm",
        task="mlm",
        train={"epochs": 4, "lr": 2e-3},
    )
    cfg["data"].pop("validation")
    cfg["data"]["max_length"] = 32
    results = api.train(cfg)
    base = results["baselines"]["base_model"]["validation"]["perplexity"]
    assert results["validation"]["perplexity"] < 0.7 * base
    # `tunelab eval` / api.evaluate score a masked LM on a text file too
    scored = api.evaluate(tmp_path / "mlm", tmp_path / "domain.txt")["test"]
    assert scored["perplexity"] < 0.7 * base and scored["n"] == len(texts)
    # the adapted encoder is a starting point for classification
    clf = tiny_config(
        tmp_path / "mlm" / "model", toy_data, tmp_path / "clf", train={"max_steps": 20}
    )
    scores = api.train(clf)
    assert scores["run"]["steps"] == 20 and "accuracy" in scores["validation"]
    with pytest.raises(Exception, match="does not label texts"):
        api.predict(tmp_path / "mlm" / "model", ["some text"])
