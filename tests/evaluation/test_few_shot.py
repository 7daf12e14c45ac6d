"""base_few_shot on a tiny Llama with the real SmolLM2 chat template and real Alpaca rows: the
prompts are sized for the shots, rows are counted by the examples they actually had, and a
split where no example fits is left out with a note instead of repeating base_model."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tunelab.config.load import validate_config
from tunelab.evaluation.baselines.base_model import base_scores
from tunelab.evaluation.scoring import scorer
from tunelab.tasks import causal_lm


@pytest.fixture(scope="module")
def tokenizer(tiny_llama):
    from tunelab.models.loading import load_tokenizer
    from tunelab.models.sources import resolve_model

    return load_tokenizer(resolve_model(str(tiny_llama)))


def _model(tiny_llama, positions: int):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(tiny_llama)
    config.max_position_embeddings = positions
    config.initializer_range = 1.0  # large weights: the loss depends on what is in front
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config)


def _base(tiny_llama, alpaca, tokenizer, *, max_length: int, positions: int, shots: int):
    train, dev = alpaca
    cfg = validate_config(
        {
            "model": str(tiny_llama),
            "task": "causal-lm",
            "data": {"train": str(train), "test": str(dev), "max_length": max_length},
            "eval": {"few_shot": shots, "generate_rows": 0},
            "output": "unused",
        }
    )
    data = causal_lm.load_data(cfg)
    feats = {n: causal_lm.featurize(s, tokenizer, max_length) for n, s in data.splits.items()}
    model = _model(tiny_llama, positions)
    return base_scores(
        model, causal_lm.TASK, feats, data, cfg, tokenizer, scorer("causal-lm")
    ), data


def _examples_in_front(data, split: str, tokenizer, length: int, shots: int) -> list[int]:
    """Independent count: each rendered few-shot row's assistant turns, less its own answer."""
    one = replace(data.splits[split], packing=False, too_long="truncate")
    out = []
    for i in range(len(one)):
        row = replace(one, records=[one.records[i]], rows=[one.rows[i]])
        f = causal_lm.few_shot_featurize(row, data.splits["train"], tokenizer, length, shots)
        out.append(tokenizer.decode(f.packed[0]["input_ids"]).count("<|im_start|>assistant") - 1)
    return out


def test_prompts_are_sized_for_the_shots(tiny_llama, alpaca, tokenizer, capsys):
    """max_length 150 fits every Alpaca row alone but few with two examples in front (was:
    examples dropped until rows fit 150, so most rows had fewer than asked, silently)."""
    base, data = _base(tiny_llama, alpaca, tokenizer, max_length=150, positions=512, shots=2)
    few = base["base_few_shot"]
    two_each = causal_lm.few_shot_featurize(  # room for both examples in front of every row
        data.splits["test"], data.splits["train"], tokenizer, 512, 2
    )
    score = scorer("causal-lm")(_model(tiny_llama, 512), two_each, None, 8, tokenizer.pad_token_id)
    assert few["test"]["loss"] == pytest.approx(score["loss"], rel=1e-5)
    assert few["shots"] == 2 and 150 < few["max_length"] <= 512
    assert few["test"]["rows_by_shots"] == {"2": len(data.splits["test"])}
    assert _examples_in_front(data, "test", tokenizer, few["max_length"], 2) == [2] * 16
    assert few["test"]["tokens"] == base["base_model"]["test"]["tokens"]  # the same answers
    assert few["test"]["loss"] != base["base_model"]["test"]["loss"]
    assert "note" not in few
    assert f"need up to {few['max_length']} tokens" in capsys.readouterr().out


def test_rows_the_model_cannot_fit_are_counted_and_noted(tiny_llama, alpaca, tokenizer, capsys):
    """A model that takes 240 tokens: longer rows have room for fewer examples than asked."""
    base, data = _base(tiny_llama, alpaca, tokenizer, max_length=160, positions=240, shots=3)
    few = base["base_few_shot"]
    counts = _examples_in_front(data, "test", tokenizer, 240, 3)
    assert set(counts) == {1, 2, 3}  # the model's limit binds, more for longer rows
    expected = {str(k): counts.count(k) for k in (3, 2, 1)}
    assert few["test"]["rows_by_shots"] == expected
    assert few["max_length"] == 240
    short = sum(c < 3 for c in counts)
    assert f"test: {short} of 16 rows have fewer than 3 examples" in few["note"]
    assert "the model takes 240 tokens" in few["note"]
    assert "warning: base_few_shot:" in capsys.readouterr().out


def test_no_room_for_any_example_is_said_not_scored(tiny_llama, alpaca, tokenizer, capsys):
    """A model that takes 64 tokens has no room for an example in front of any row (was: a
    base_few_shot loss identical to base_model's, reported as 1-shot)."""
    base, _ = _base(tiny_llama, alpaca, tokenizer, max_length=64, positions=64, shots=1)
    few = base["base_few_shot"]
    assert "test" not in few and "validation" not in few  # no number that is base_model again
    assert few["shots"] == 1
    assert "no training example fits in front of any of its 16 rows" in few["note"]
    assert "the model takes 64 tokens" in few["note"]
    out = capsys.readouterr().out
    assert "warning: base_few_shot:" in out and "test: no training example fits" in out
