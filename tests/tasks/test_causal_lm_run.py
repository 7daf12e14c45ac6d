"""Causal-LM SFT through the whole pipeline on a tiny Llama built from config, with the real
SmolLM2 tokenizer and chat template and real Alpaca rows: loss on the answers falls below the
base model's, the saved model loads with transformers and generates."""

from __future__ import annotations

import json

import pytest
from conftest import write_jsonl

from tunelab import api


@pytest.mark.parametrize("method", ["full", "lora"])
def test_sft_lowers_answer_loss_and_generates(tiny_llama, alpaca, tmp_path, method):
    train, dev = alpaca
    cfg = {
        "model": str(tiny_llama),
        "task": "causal-lm",
        "data": {"train": str(train), "validation": str(dev), "max_length": 256},
        "method": {"name": method},
        "train": {
            "epochs": 4,
            "batch_size": 4,
            "lr": 5e-3 if method == "full" else 3e-2,
            "seed": 0,
        },
        "output": str(tmp_path / "run"),
    }
    results = api.train(cfg)
    base = results["baselines"]["base_model"]["validation"]["loss"]
    # the random base starts near ln(vocab) ~ 10.8 nats per answer token; LoRA on random
    # weights learns little (its learning is checked on real models), so check its mechanics
    if method == "full":
        assert results["validation"]["loss"] < base - 1.0
    else:
        from safetensors.torch import load_file

        assert results["validation"]["loss"] < base
        state = load_file(str(tmp_path / "run" / "adapter" / "adapter_model.safetensors"))
        assert all(t.abs().sum() > 0 for k, t in state.items() if "lora_B" in k)
    assert 300 < results["validation"]["tokens"] < 5000  # answers only, not prompts
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "model")  # plain HF folder
    out = api.generate(tmp_path / "run", ["Give three tips for staying healthy."], max_new_tokens=8)
    assert isinstance(out[0], str) and len(out) == 1


def test_bad_rows_name_file_and_row(tiny_llama, tmp_path):
    from tunelab.errors import DataError

    bad = write_jsonl(tmp_path / "bad.jsonl", [{"instruction": "a", "output": "b"}, {"foo": 1}])
    cfg = {
        "model": str(tiny_llama),
        "task": "causal-lm",
        "data": {"train": str(bad)},
        "output": str(tmp_path / "r"),
    }
    with pytest.raises(DataError, match=r"bad.jsonl.*row 2"):
        api.train(cfg)
    assert not (tmp_path / "r" / "model").exists()


@pytest.mark.e2e
def test_chat_streams_and_keeps_history():
    from tunelab.api import load_causal_lm
    from tunelab.config.generation import GenerationConfig
    from tunelab.inference.generation import chat_loop

    model, tokenizer = load_causal_lm("smollm2-135m-instruct")
    said = iter(["What is the capital of France?", "/reset", "/exit", "never read"])
    pieces: list[str] = []
    history = chat_loop(
        model,
        tokenizer,
        GenerationConfig(max_new_tokens=12),
        read=lambda prompt: next(said),
        write=pieces.append,
    )
    reply = "".join(pieces)
    assert "Paris" in reply
    assert len([p for p in pieces if p.strip()]) > 2  # streamed in pieces, not one block
    assert history == []  # /reset cleared it before /exit


def test_generate_refuses_models_that_are_not_causal_lms(tiny_model, tmp_path):
    """An encoder would get a random LM head and generate noise: refuse it by name instead."""

    from tunelab.errors import TunelabError

    with pytest.raises(TunelabError, match="BertModel model, not a causal LM"):
        api.generate(tiny_model, ["hi"])
    run = tmp_path / "run" / "model"
    run.mkdir(parents=True)
    (run / "tunelab.json").write_text(json.dumps({"task": "classification"}))
    with pytest.raises(TunelabError, match="holds a 'classification' model"):
        api.generate(tmp_path / "run", ["hi"])
