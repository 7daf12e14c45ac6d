"""Methods: freeze trains only what it says; LoRA saves a small adapter that peft loads
alone, and a merged model that transformers loads, both predicting like tunelab."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_config
from safetensors.torch import load_file

from tunelab import api
from tunelab.config import method_config
from tunelab.methods import freeze


def _weights(folder) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_freeze_keeps_lower_layers_and_embeddings(tiny_model, toy_data, tmp_path):
    cfg = tiny_config(
        tiny_model, toy_data, tmp_path / "run", method={"name": "freeze", "train_layers": 1}
    )
    results = api.train(cfg)
    before, after = _weights(tiny_model), _weights(tmp_path / "run" / "model")

    def same(prefix: str) -> bool:
        keys = [k for k in before if k.startswith(prefix)]
        assert keys, prefix
        return all(
            torch.equal(before[k], after["bert." + k if "bert." + k in after else k]) for k in keys
        )

    assert same("embeddings.")
    assert same("encoder.layer.0.")
    assert not same("encoder.layer.1.")
    trainable, total = results["run"]["trainable_params"], results["run"]["total_params"]
    assert trainable < total / 5


def test_freeze_finds_layers_of_other_architectures():
    from transformers import LlamaConfig, LlamaForSequenceClassification

    model = LlamaForSequenceClassification(
        LlamaConfig(
            vocab_size=100,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=3,
            num_attention_heads=2,
            num_labels=2,
            pad_token_id=0,
        )
    )
    freeze.apply(model, method_config("freeze", train_layers=1), "classification")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith("model.layers.2.") for n in trainable)
    assert not any(
        n.startswith(("model.layers.0.", "model.layers.1.", "model.embed_tokens"))
        for n in trainable
    )
    assert "score.weight" in trainable and "model.norm.weight" in trainable


@pytest.fixture(scope="module")
def lora_run(tiny_model, toy_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("lora") / "run"
    cfg = tiny_config(
        tiny_model, toy_data, out, method={"name": "lora", "r": 4}, train={"lr": 1e-2, "epochs": 3}
    )
    return out, api.train(cfg)


def test_lora_trains_a_small_share(lora_run):
    out, results = lora_run
    assert results["run"]["trainable_params"] < 0.2 * results["run"]["total_params"]
    # LoRA's B matrices start at zero: non-zero ones prove the adapter was trained and saved.
    state = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    lora_b = [t for k, t in state.items() if "lora_B" in k]
    assert lora_b and all(t.abs().sum() > 0 for t in lora_b)
    # (whether LoRA learns a real task is checked on the real encoder in tests/test_e2e.py)


def test_lora_adapter_loads_with_peft_alone(lora_run, tiny_model):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out, _ = lora_run
    adapter = out / "adapter"
    files = {p.name for p in adapter.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= files
    assert "model.safetensors" not in files
    assert (adapter / "adapter_model.safetensors").stat().st_size < (
        out / "model" / "model.safetensors"
    ).stat().st_size / 3

    texts = ["a great fun film", "the plot was awful and boring", "really superb actors"]
    labels = json.loads((out / "model" / "tunelab.json").read_text())["labels"]["names"]
    base = AutoModelForSequenceClassification.from_pretrained(
        tiny_model,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
    )
    peft_model = PeftModel.from_pretrained(base, adapter).eval()
    tok = AutoTokenizer.from_pretrained(adapter)
    with torch.no_grad():
        peft_logits = peft_model(**tok(texts, return_tensors="pt", padding=True)).logits
    merged = AutoModelForSequenceClassification.from_pretrained(out / "model").eval()
    with torch.no_grad():
        merged_logits = merged(**tok(texts, return_tensors="pt", padding=True)).logits
    assert torch.allclose(peft_logits, merged_logits, atol=1e-4)
    ours = api.predict(out / "model", texts)
    assert [p["label"] for p in ours] == [labels[i] for i in merged_logits.argmax(-1).tolist()]


def test_lora_unmerged_model_is_the_adapter(tiny_model, toy_data, tmp_path):
    cfg = tiny_config(
        tiny_model,
        toy_data,
        tmp_path / "run",
        method={"name": "lora", "r": 4, "merge": False},
        train={"lr": 1e-2, "max_steps": 30},
    )
    results = api.train(cfg)
    model_dir = tmp_path / "run" / "model"
    assert (model_dir / "adapter_config.json").is_file() and not (
        model_dir / "model.safetensors"
    ).exists()
    assert not (tmp_path / "run" / "adapter").exists()
    scores = api.evaluate(model_dir, cfg["data"]["test"])
    assert scores["test"]["accuracy"] == pytest.approx(results["test"]["accuracy"])
