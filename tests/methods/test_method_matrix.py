"""Every method on every model family tunelab trains: it trains (a few steps, saved, loaded
back to the same score), or it is refused before any weights load with one line that names
the family and the methods that fit.

The verdicts are the table VERDICTS; a library upgrade that changes one (a method that stops
working, or starts to) fails here, and `make lock && make test` says so.
"""

from __future__ import annotations

import random

import pytest
from conftest import (
    tiny_bart_model,
    tiny_config,
    toy_ner_files,
    toy_rows,
    word_tokenizer,
    write_jsonl,
)

from tunelab import api
from tunelab.errors import ConfigError

METHODS = ["full", "freeze", "lora", "dora", "qlora", "adapter", "prefix", "prompt", "ia3"]

# (task, family) -> the methods refused there, and the words the refusal must contain.
# Everything else must train.
REFUSED = {
    ("classification", "bert"): {"prefix": "BertForSequenceClassification"},
    ("token-classification", "bert"): {
        "prefix": "BertForTokenClassification",
        "prompt": "no longer line up",
    },
    ("mlm", "bert"): {"prefix": "mlm", "prompt": "mlm"},
    ("classification", "llama"): {"prefix": "LlamaForSequenceClassification"},
    ("causal-lm", "llama"): {},
    ("seq2seq", "bart"): {},
    ("seq2seq", "bert2bert"): {
        "prefix": "warm-started",
        "prompt": "warm-started",
        "ia3": "method.merge: false",
    },
}
# A refused default that trains with the setting its refusal names.
WITH_SETTING = [(("seq2seq", "bert2bert"), "ia3", {"merge": False})]
NO_GPU = "qlora"  # refused on a machine without CUDA, whatever the model

WORDS = "red blue green cat dog bird one two three house tree river".split()


def _reversal(path, n: int, seed: int):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(2, 4))]
        rows.append({"text": " ".join(words), "target": " ".join(reversed(words))})
    return write_jsonl(path, rows)


@pytest.fixture(scope="module")
def families(tmp_path_factory, tiny_model, toy_data, tiny_llama, alpaca):
    """(task, family) -> (model folder, data files, config sections)."""
    root = tmp_path_factory.mktemp("matrix")
    ner = toy_ner_files(root / "ner", 64, 16)
    text = {}
    for split, seed in (("train", 7), ("validation", 8)):
        text[split] = root / f"domain-{split}.txt"
        text[split].write_text("\n".join(r["text"] for r in toy_rows(80, seed=seed)) + "\n")
    bart = root / "bart"
    tok = word_tokenizer(WORDS)
    tiny_bart_model(len(tok)).save_pretrained(bart, safe_serialization=True)
    tok.save_pretrained(bart)
    rev = {
        "train": _reversal(root / "rev-train.jsonl", 64, 1),
        "validation": _reversal(root / "rev-dev.jsonl", 16, 2),
    }
    train, dev = alpaca
    return {
        ("classification", "bert"): (tiny_model, toy_data, {}),
        ("token-classification", "bert"): (
            tiny_model,
            ner,
            {"data": {"text": "tokens", "label": "ner_tags"}},
        ),
        ("mlm", "bert"): (tiny_model, text, {"data": {"max_length": 32}}),
        ("classification", "llama"): (tiny_llama, toy_data, {}),
        ("causal-lm", "llama"): (
            tiny_llama,
            {"train": train, "validation": dev},
            {"data": {"max_length": 128, "packing": False}},
        ),
        ("seq2seq", "bart"): (bart, rev, {}),
        ("seq2seq", "bert2bert"): (tiny_model, rev, {}),
    }


def _config(families, pair, method: str, out, **overrides) -> dict:
    model, files, sections = families[pair]
    cfg = tiny_config(
        model,
        files,
        out,
        task=pair[0],
        method={"name": method, **overrides},
        train={"max_steps": 4, "batch_size": 8, "eval_steps": 4, "lr": None},  # per method
    )
    cfg["data"].update(sections.get("data", {}))
    task = pair[0]
    if task not in ("classification", "token-classification"):
        cfg["data"].pop("label")
    if task in ("mlm", "causal-lm"):
        cfg["data"].pop("text")
    return cfg


@pytest.fixture
def no_weights_load(monkeypatch):
    """Any from_pretrained of a model fails the test: a refusal must come before weights."""
    from transformers import modeling_utils

    def refuse(*args, **kwargs):
        raise AssertionError("weights were loaded before the refusal")

    monkeypatch.setattr(modeling_utils.PreTrainedModel, "from_pretrained", refuse)


PAIRS = list(REFUSED)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("pair", PAIRS, ids=[f"{t}-{f}" for t, f in PAIRS])
def test_method_on_family(pair, method, families, tmp_path, request):
    cfg = _config(families, pair, method, tmp_path / "run")
    refused = REFUSED[pair].get(method) or ("CUDA" if method == NO_GPU else None)
    if not refused:
        _trains(cfg, tmp_path / "run", method)
    else:
        request.getfixturevalue("no_weights_load")
        with pytest.raises(ConfigError) as info:
            api.train(cfg)
        message = str(info.value)
        assert "\n" not in message and refused in message
        assert message.startswith(f"method.name: {method!r} cannot adapt")
        fits = message.split("methods that fit: ")[1].split(", ")
        assert method not in fits and "lora" in fits
        assert not (tmp_path / "run" / "model").exists()


@pytest.mark.parametrize("pair, method, setting", WITH_SETTING)
def test_refused_default_trains_with_the_named_setting(pair, method, setting, families, tmp_path):
    _trains(_config(families, pair, method, tmp_path / "run", **setting), tmp_path / "run", method)


def _trains(cfg: dict, out, method: str) -> None:
    results = api.train(cfg)
    run = results["run"]
    assert run["steps"] == 4
    if method == "full":
        assert run["trainable_params"] == run["total_params"]
    else:
        assert 0 < run["trainable_params"] < run["total_params"]
    base = results["baselines"].get("base_model", {}).get("validation", {}).get("loss")
    if method in ("prefix", "prompt") and base is not None:  # the virtual tokens reach the model
        assert abs(results["validation"]["loss"] - base) > 1e-6
    # the saved model loads back (with tunelab alone) and scores validation the same
    data = cfg["data"].get("validation", cfg["data"]["train"])
    again = api.evaluate(out / "model", data)["test"]
    assert again["loss"] == pytest.approx(results["validation"]["loss"], rel=1e-3, abs=1e-4)
