"""explain(): reports (HTML escaping, JSON round trip), compare, token classification, global
importance, and the CLI (help, a bad --target naming the flag and the labels)."""

from __future__ import annotations

import json

import interpret_fixtures
import pytest
import torch
from conftest import POS

from tunelab.cli.commands import main as cli
from tunelab.errors import ConfigError, RunDirError
from tunelab.interpret.explain import explain
from tunelab.interpret.global_importance import global_importance

trained_cls = interpret_fixtures.trained_cls  # the shared session fixture


def test_html_escapes_and_json_round_trips(trained_cls, tmp_path):
    text = 'a superb <script>alert("x")</script> film & more'
    rep = explain(trained_cls, [text], methods=("grad_x_input", "occlusion"), output=tmp_path)
    page = (tmp_path / "explain.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "http" not in page  # self-contained
    saved = json.loads((tmp_path / "explain.json").read_text())
    assert saved == json.loads(json.dumps({k: v for k, v in rep.items() if k != "output"}))
    unit = saved["texts"][0]["units"][0]
    n = len(saved["texts"][0]["tokens"])
    assert all(len(v) == n for v in unit["attributions"].values())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_output_with_foreign_files_is_refused(trained_cls, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="--output"):
        explain(trained_cls, ["fun"], methods=("occlusion",), output=tmp_path)


def test_compare_same_labels_and_refuses_base_encoder(trained_cls, tiny_model):
    rep = explain(trained_cls, ["a dull plot"], methods=("occlusion",), compare=trained_cls)
    t = rep["texts"][0]
    # the same model compared with itself explains the same class with the same numbers
    assert t["compare"]["units"][0]["name"] == t["units"][0]["name"]
    assert t["compare"]["units"][0]["attributions"] == t["units"][0]["attributions"]
    with pytest.raises(ConfigError, match="--compare.*without a trained head"):
        explain(trained_cls, ["a dull plot"], compare=tiny_model)


def test_target_label_and_pairs(trained_cls):
    rep = explain(trained_cls, ["superb"], pairs=["dull"], methods=("ig",), target="negative")
    t = rep["texts"][0]
    assert t["units"][0]["name"] == "negative"
    assert sum(tok["special"] for tok in t["tokens"]) == 3  # [CLS] a [SEP] b [SEP]
    with pytest.raises(ConfigError, match="--target.*labels: negative, positive"):
        explain(trained_cls, ["x"], target="neutral")


def test_token_classification_entities_and_word(tiny_model, tmp_path):
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    names = ["O", "B-PER", "B-LOC"]
    cfg = BertConfig.from_pretrained(
        tiny_model,
        num_labels=3,
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
    )
    torch.manual_seed(0)
    BertForTokenClassification(cfg).save_pretrained(tmp_path / "ner")
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(tmp_path / "ner")
    rep = explain(
        tmp_path / "ner", ["alice went to paris ."], word="paris", target="B-LOC", ig_steps=40
    )
    t = rep["texts"][0]
    assert t["prediction"]["words"] == ["alice", "went", "to", "paris", "."]
    unit = t["units"][0]
    assert unit["name"] == "B-LOC: paris" and unit["tags"] == ["B-LOC"]
    ig = sum(unit["attributions"]["ig"])
    assert ig == pytest.approx(unit["score"] - unit["baseline_score"], abs=0.02)
    with pytest.raises(ConfigError, match="--word"):
        explain(tmp_path / "ner", ["alice went"], word="bob")


def test_global_importance_finds_sentiment_words(trained_cls, toy_data, tmp_path):
    rep = global_importance(
        trained_cls, toy_data["test"], rows=60, top=5, min_count=3, output=tmp_path
    )
    top_pos = [w["word"] for w in rep["classes"]["positive"]]
    assert set(top_pos[:3]) <= set(POS)
    assert all(w["count"] >= 3 and w["pushes"] <= w["count"] for w in rep["classes"]["positive"])
    assert json.loads((tmp_path / "global.json").read_text())["classes"] == rep["classes"]
    assert "toward positive" in (tmp_path / "global.html").read_text()


def test_cli_help_and_bad_target(trained_cls, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli(["explain", "--help"])
    assert exc.value.code == 0
    assert "tunelab explain runs/sst2" in capsys.readouterr().out
    out = tmp_path / "out"
    code = cli(
        ["explain", str(trained_cls), "--text", "fun", "--target", "happy", "--output", str(out)]
    )
    err = capsys.readouterr().err
    assert code != 0 and "--target" in err and "negative, positive" in err
    assert not out.exists()  # nothing half-written
    code = cli(
        [
            "explain",
            str(trained_cls),
            "--text",
            "a superb film",
            "--method",
            "occlusion",
            "--output",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0 and "superb(+" in printed and (out / "explain.html").is_file()
