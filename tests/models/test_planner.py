"""The planner's arithmetic, against PyTorch itself: tiny models built from config."""

from __future__ import annotations

import numpy as np
import pytest

from tunelab.config.method import method_config
from tunelab.errors import ConfigError
from tunelab.models.planner.device import Device, parse_device
from tunelab.models.planner.estimate import RunSpec, _act_floats_per_token, plan_run
from tunelab.models.planner.shape import shape_from_config
from tunelab.models.planner.speed import Speed
from tunelab.models.planner.trainable import trainable

SPEED = Speed(gflops=20.0, bandwidth_gbs=5.0, op_us=5.0, source="test")
CPU = Device("cpu", 16 * 1024, "test CPU", planned=True)


def _bert_config(hidden=64, layers=2):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=1000,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
    )


def _llama_config(hidden=64):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=1000 if hidden == 64 else 8000,
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=2 * hidden,
        tie_word_embeddings=True,
    )


def _saved_bytes(model, ids) -> int:
    """Bytes autograd saves in one forward pass (distinct storages, weights excluded)."""
    import torch

    seen: dict[int, int] = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.float().sum()
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    return sum(n for ptr, n in seen.items() if ptr not in weights)


def _spec(name="full", **kw):
    return RunSpec(
        method=method_config(name),
        batch_size=4,
        grad_accum=1,
        max_length=64,
        precision="fp32",
        **kw,
    )


@pytest.mark.parametrize("kind", ["bert", "llama"])
def test_activation_count_matches_what_autograd_saves(kind):
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    config = _bert_config() if kind == "bert" else _llama_config()
    task = "classification" if kind == "bert" else "causal-lm"
    auto = AutoModelForSequenceClassification if kind == "bert" else AutoModelForCausalLM
    torch.manual_seed(0)
    model = auto.from_config(config)
    model.train()
    shape = shape_from_config(config, task)
    b, t = 4, 48
    measured = _saved_bytes(model, torch.randint(5, 900, (b, t)))
    spec = _spec("full")
    estimated = b * t * _act_floats_per_token(shape, trainable(shape, spec.method), spec, t) * 4
    assert estimated == pytest.approx(measured, rel=0.15)


def test_shape_counts_parameters_without_weights():
    from transformers import AutoModelForSequenceClassification

    config = _bert_config()
    shape = shape_from_config(config, "classification", num_labels=3)
    real = AutoModelForSequenceClassification.from_config(
        config.__class__.from_dict({**config.to_dict(), "num_labels": 3})
    )
    assert shape.params == sum(p.numel() for p in real.parameters())
    assert shape.layers == 2 and shape.hidden == 64 and shape.family == "encoder"


def test_lora_needs_less_memory_than_full_and_qlora_weights_less_than_lora():
    shape = shape_from_config(_llama_config(hidden=512), "causal-lm")  # weights dominate
    lengths = np.full(64, 60)
    gpu = parse_device("cuda:80GB")
    full = plan_run(shape, _spec("full"), lengths, gpu, SPEED)
    lora = plan_run(shape, _spec("lora"), lengths, gpu, SPEED)
    qlora = plan_run(shape, _spec("qlora"), lengths, gpu, SPEED)
    assert lora.peak_mib < full.peak_mib
    assert lora.gradients_mib < full.gradients_mib / 10
    assert qlora.weights_mib < lora.weights_mib
    assert lora.trainable_params < full.trainable_params


def test_freeze_trains_the_top_layers_only():
    shape = shape_from_config(_bert_config(layers=4), "classification")
    top1 = trainable(shape, method_config("freeze", train_layers=1))
    top3 = trainable(shape, method_config("freeze", train_layers=3))
    assert top1.params < top3.params < shape.params
    assert list(top1.grad_layers) == [3]


def test_checkpointing_cuts_activations_and_costs_a_recompute():
    shape = shape_from_config(_bert_config(layers=6), "classification")
    lengths = np.full(64, 60)
    base = plan_run(shape, _spec(), lengths, CPU, SPEED)
    gc = plan_run(shape, _spec(checkpointing=True), lengths, CPU, SPEED)
    assert gc.activations_mib < base.activations_mib / 2
    assert gc.step_tflop > base.step_tflop  # the recompute


def test_a_planned_gpu_needs_no_gpu():
    d = parse_device("cuda:80GB")
    assert (d.kind, d.memory_mib, d.planned) == ("cuda", 80 * 1024, True)
    assert d.tflops > 0
    assert parse_device("cpu:16GB").memory_mib == 16 * 1024


def test_a_bad_device_names_the_flag():
    with pytest.raises(ConfigError, match="--device.*cuda:80GB"):
        parse_device("tpu:8")
