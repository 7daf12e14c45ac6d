"""The PEFT family (dora, ia3, prefix, prompt, bottleneck adapter), layer ranges for freeze,
rsLoRA and qlora's refusal on CPU: each trains only what it says, saves only that, and loads
back to the same predictions. (Whether each learns a real task is measured on the packaged
encoder in bench/methods.py: a random tiny base gives a frozen-base method nothing to steer.)
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_config
from safetensors.torch import load_file

from tunelab import api
from tunelab.config import method_config
from tunelab.errors import ConfigError
from tunelab.methods import adapter, freeze, lora

TEXTS = ["a great fun film", "the plot was awful and boring", "really superb actors", "dull"]


def _train(tiny_model, toy_data, out, **method):
    cfg = tiny_config(
        tiny_model,
        toy_data,
        out,
        method=method,
        train={"max_steps": 6, "lr": 5e-2, "batch_size": 16, "eval_steps": 6},
    )
    return api.train(cfg)


def _probs(model_dir) -> torch.Tensor:
    return torch.tensor(
        [[p["scores"][k] for k in sorted(p["scores"])] for p in api.predict(model_dir, TEXTS)]
    )


def _size(folder) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.suffix == ".safetensors")


# prefix on the BERT encoder is refused on transformers 5.x: test_method_matrix.py
@pytest.mark.parametrize("name", ["prompt", "adapter"])
def test_unmergeable_methods_save_only_what_trained(name, tiny_model, toy_data, tmp_path):
    out = tmp_path / "run"
    results = _train(tiny_model, toy_data, out, name=name)
    run = results["run"]
    assert run["trainable_params"] < 0.05 * run["total_params"]
    model_dir = out / "model"
    # only the update: far smaller than the base weights, no full model file
    assert not (model_dir / "model.safetensors").exists()
    assert _size(model_dir) < _size(tiny_model) / 10
    assert run["saved_mb"] == pytest.approx(_size(model_dir) / 2**20, abs=0.01)
    meta = json.loads((model_dir / "tunelab.json").read_text())
    assert meta["method"] == name and meta["merged"] is False
    # reloaded on top of the base, it scores the test split exactly as the trained model did
    reloaded = api.evaluate(model_dir, toy_data["test"])["test"]
    assert reloaded["loss"] == pytest.approx(results["test"]["loss"], abs=1e-5)


@pytest.mark.parametrize("name", ["dora", "ia3"])
def test_mergeable_methods_merge_to_the_same_predictions(name, tiny_model, toy_data, tmp_path):
    out = tmp_path / "run"
    results = _train(tiny_model, toy_data, out, name=name)
    assert results["run"]["trainable_params"] < 0.1 * results["run"]["total_params"]
    assert (out / "model" / "model.safetensors").is_file()  # merged: a plain model folder
    assert _size(out / "adapter") < _size(out / "model") / 5
    merged, alone = _probs(out / "model"), _probs(out / "adapter")
    assert torch.allclose(merged, alone, atol=1e-4)
    reloaded = api.evaluate(out / "model", toy_data["test"])["test"]
    assert reloaded["loss"] == pytest.approx(results["test"]["loss"], abs=1e-4)


def test_adapter_leaves_the_base_unchanged_and_starts_as_identity(tiny_model):
    from transformers import AutoModelForSequenceClassification

    base = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2).eval()
    before = {n: p.detach().clone() for n, p in base.named_parameters()}
    x = {"input_ids": torch.tensor([[101, 2204, 3185, 102]])}
    with torch.no_grad():
        logits0 = base(**x).logits
    model = adapter.apply(
        base, method_config("adapter", adapter_placement="houlsby"), "classification"
    )
    with torch.no_grad():
        assert torch.allclose(model(**x).logits, logits0, atol=1e-6)  # up-projection is zero
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    # houlsby: after attention and FFN of both layers; plus the classifier
    assert sum(".adapter.up.weight" in n for n in trainable) == 4
    assert {"classifier.weight", "classifier.bias"} <= trainable
    assert not any(n.startswith("bert.embeddings") for n in trainable)
    # a step on the adapters changes no base weight
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    model(**x).logits.sum().backward()
    opt.step()
    after = {n.replace(".linear.", "."): p for n, p in model.named_parameters()}
    assert all(torch.equal(before[n], after[n]) for n in before if not n.startswith("classifier"))


def test_freeze_layer_ranges(tiny_model):
    from transformers import AutoModelForSequenceClassification

    def trained(spec, **kw):
        m = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2)
        freeze.apply(m, method_config("freeze", train_layers=spec, **kw), "classification")
        return {n for n, p in m.named_parameters() if p.requires_grad}

    only_0 = trained("0")
    assert any(n.startswith("bert.encoder.layer.0.") for n in only_0)
    assert not any(n.startswith("bert.encoder.layer.1.") for n in only_0)
    assert trained([-1]) == trained(1) == trained("1")
    assert not any("embeddings" in n for n in trained("0-1"))
    assert any("embeddings" in n for n in trained(0, train_embeddings=True))
    with pytest.raises(ConfigError, match=r"method.train_layers.*layer 5 does not exist"):
        trained("0,5")
    with pytest.raises(ConfigError, match="method.train_layers"):
        trained("top")


def test_freeze_on_an_encoder_decoder_trains_the_chosen_layers_of_each_stack():
    from transformers import BartConfig, BartForConditionalGeneration

    model = BartForConditionalGeneration(
        BartConfig(
            vocab_size=50, d_model=16, encoder_layers=3, decoder_layers=3, encoder_ffn_dim=32,
            decoder_ffn_dim=32, encoder_attention_heads=2, decoder_attention_heads=2,
        )
    )  # fmt: skip
    freeze.apply(model, method_config("freeze", train_layers=1), "seq2seq")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    for stack in ("model.encoder.layers", "model.decoder.layers"):
        assert any(n.startswith(f"{stack}.2.") for n in trainable)
        assert not any(n.startswith((f"{stack}.0.", f"{stack}.1.")) for n in trainable)
    assert "model.shared.weight" not in trainable


def test_rslora_scales_by_the_square_root_of_the_rank(tiny_model):
    from transformers import AutoModelForSequenceClassification

    def scaling(rslora: bool) -> float:
        m = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2)
        m = lora.apply(m, method_config("lora", r=16, alpha=8, rslora=rslora), "classification")
        layer = next(mod for n, mod in m.named_modules() if n.endswith("query"))
        return layer.scaling["default"]

    assert scaling(False) == pytest.approx(8 / 16)
    assert scaling(True) == pytest.approx(8 / 16**0.5)


def test_qlora_on_cpu_refuses_before_any_work(tiny_model, toy_data, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    cfg = tiny_config(tiny_model, toy_data, tmp_path / "run", method={"name": "qlora"})
    with pytest.raises(ConfigError, match=r"method.name.*CUDA GPU.*method.name: lora"):
        api.train(cfg)
    assert not (tmp_path / "run").exists()


def test_method_settings_are_checked_by_name(tiny_model, toy_data, tmp_path, tiny_llama):
    with pytest.raises(ConfigError, match="method.merge: prefix cannot be folded"):
        api.train(
            tiny_config(
                tiny_model, toy_data, tmp_path / "a", method={"name": "prefix", "merge": True}
            )
        )
    cfg = tiny_config(tiny_model, toy_data, tmp_path / "b", method={"name": "prompt"})
    cfg.update(task="mlm")
    with pytest.raises(
        ConfigError, match="method.name: 'prompt' cannot adapt mlm: prompt tuning has no mlm form"
    ):
        api.train(cfg)
    causal = {
        "model": str(tiny_llama),
        "task": "causal-lm",
        "data": {"train": str(toy_data["train"])},
    }
    with pytest.raises(ConfigError, match="data.packing: prefix tuning"):
        api.train({**causal, "method": {"name": "prefix"}, "output": str(tmp_path / "c")})


def test_prompt_tuning_a_causal_lm_scores_and_generates(tiny_llama, alpaca, tmp_path):
    train, dev = alpaca
    out = tmp_path / "run"
    results = api.train(
        {
            "model": str(tiny_llama),
            "task": "causal-lm",
            "data": {"train": str(train), "test": str(dev), "max_length": 256, "packing": False},
            "method": {"name": "prompt", "num_virtual_tokens": 4},
            "train": {"max_steps": 2, "batch_size": 8},
            "eval": {"few_shot": 0, "generate_rows": 2, "baselines": []},
            "generation": {"max_new_tokens": 4},
            "output": str(out),
        }
    )
    assert results["run"]["trainable_params"] == 4 * 32  # 4 virtual tokens of width 32
    # the reloaded adapter scores the same answer tokens with the same loss
    state = load_file(str(out / "model" / "adapter_model.safetensors"))
    assert [t.shape for t in state.values()] == [torch.Size([4, 32])]
    again = api.evaluate(out / "model", dev)["test"]
    assert again["tokens"] == results["test"]["tokens"]
    assert again["loss"] == pytest.approx(results["test"]["loss"], abs=1e-4)
    assert isinstance(api.generate(out, ["Name a colour."], max_new_tokens=3)[0], str)
