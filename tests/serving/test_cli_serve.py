"""`tunelab serve` refusals that happen before any weights load, and the key check."""

from __future__ import annotations

import pytest

from tunelab.cli.commands import main
from tunelab.serving.auth import api_keys, authorized
from tunelab.serving.registry import parse_spec


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "Traceback" not in "\n".join(err)
    return err[-1]


def test_pickle_weights_are_refused(tiny_model, tmp_path, capsys):
    import shutil

    import torch
    from safetensors.torch import load_file

    shutil.copytree(tiny_model, tmp_path / "m")  # the same model, its weights as a pickle
    weights = tmp_path / "m" / "model.safetensors"
    torch.save(load_file(weights), tmp_path / "m" / "pytorch_model.bin")
    weights.unlink()
    msg = _error(capsys, ["serve", str(tmp_path / "m")])
    assert "pytorch_model.bin" in msg and "safetensors only" in msg


def test_argument_errors_name_the_problem(tiny_model, capsys):
    assert "two models named a" in _error(capsys, ["serve", f"a={tiny_model}", f"a={tiny_model}"])
    assert "--max-batch-size" in _error(capsys, ["serve", str(tiny_model), "--max-batch-size", "0"])
    assert "does not exist" in _error(capsys, ["serve", "x=/no/such/model"])


def test_vllm_engine_refuses_without_vllm_or_gpu(tiny_model, capsys):
    import importlib.util

    import torch

    if importlib.util.find_spec("vllm") is not None and torch.cuda.is_available():
        pytest.skip("vllm and a GPU are here")
    assert "--engine vllm" in _error(capsys, ["serve", str(tiny_model), "--engine", "vllm"])


def test_parse_spec_names():
    assert parse_spec("sst2=runs/sst2") == ("sst2", "runs/sst2")
    assert parse_spec("runs/sst2") == ("sst2", "runs/sst2")
    assert parse_spec("runs/sst2/model") == ("sst2", "runs/sst2/model")
    assert parse_spec("runs/chat/adapter/") == ("chat", "runs/chat/adapter/")
    assert parse_spec("smollm2-135m-instruct") == ("smollm2-135m-instruct", "smollm2-135m-instruct")


def test_api_keys_and_bearer_check():
    assert api_keys(["a"], {"TUNELAB_API_KEYS": " b, a ,,c"}) == ["a", "b", "c"]
    assert api_keys([], {}) == []
    keys = ["k1", "k2"]
    assert authorized("Bearer k2", keys) and authorized("bearer k1", keys)
    assert not authorized("Bearer k3", keys)
    assert not authorized("k1", keys)  # no scheme
    assert not authorized("Basic k1", keys)
    assert not authorized(None, keys) and not authorized("Bearer ", keys)
    assert authorized(None, [])  # no keys configured: open


def test_unloadable_or_headless_models_are_one_line(tiny_model, tmp_path, capsys):
    import json
    import shutil

    msg = _error(capsys, ["serve", str(tiny_model)])  # a bare encoder: nothing to serve
    assert "BertModel" in msg and "serve needs a model of one of these tasks" in msg
    assert all(task in msg for task in ("classification", "token-classification", "causal-lm"))
    shutil.copytree(tiny_model, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["architectures"] = ["BertForSequenceClassification"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    (tmp_path / "m" / "model.safetensors").unlink()  # a classifier config without weights
    msg = _error(capsys, ["serve", f"broken={tmp_path / 'm'}"])
    assert msg.startswith(f"error: broken={tmp_path / 'm'}: could not load it: ")
