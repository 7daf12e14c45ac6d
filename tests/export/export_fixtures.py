"""Trained tiny runs to export: a LoRA classifier (tiny BERT) and a LoRA causal LM (tiny
Llama). Not a conftest.py: a second conftest module would shadow the root one for
`from conftest import ...` elsewhere."""

from __future__ import annotations

import pytest
from conftest import tiny_config


@pytest.fixture(scope="module")
def cls_run(tiny_model, toy_data, tmp_path_factory):
    """A tiny BERT classifier, LoRA merged into model/, adapter alone in adapter/."""
    from tunelab import api

    out = tmp_path_factory.mktemp("cls") / "run"
    files = {k: toy_data[k] for k in ("train", "validation", "test")}
    cfg = tiny_config(
        tiny_model, files, out, method={"name": "lora", "r": 8}, train={"epochs": 3, "lr": 1e-2}
    )
    api.train(cfg)
    return out


@pytest.fixture(scope="module")
def llama_run(tiny_llama, alpaca, tmp_path_factory):
    """A tiny Llama with a LoRA update trained a few steps (merged into model/)."""
    from tunelab import api

    train, dev = alpaca
    out = tmp_path_factory.mktemp("lm") / "run"
    cfg = {
        "model": str(tiny_llama),
        "task": "causal-lm",
        "data": {"train": str(train), "validation": str(dev), "max_length": 128},
        "method": {"name": "lora", "r": 4},
        "train": {"max_steps": 6, "batch_size": 4, "lr": 3e-2, "seed": 0},
        "eval": {"baselines": []},
        "output": str(out),
    }
    api.train(cfg)
    return out
