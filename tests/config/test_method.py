"""`method:` is one section per method, picked by `name`: a setting of another method is an
error naming the path and the method, each method takes its own settings."""

from __future__ import annotations

import pytest

from tunelab.config import (
    FreezeMethod,
    FullMethod,
    LoraMethod,
    method_config,
    switch_method,
)
from tunelab.config.load import validate_config
from tunelab.config.method import METHOD_CLASSES, METHODS
from tunelab.errors import ConfigError

BASE = {"model": "m", "data": {"train": "train.jsonl"}}


def run(method) -> object:
    return validate_config({**BASE, "method": method})


def error(method) -> str:
    with pytest.raises(ConfigError) as info:
        run(method)
    return str(info.value)


def test_a_key_of_another_method_is_rejected_with_path_and_method():
    msg = error({"name": "full", "r": 8, "adapter_size": 7, "rslora": True})
    assert msg.startswith("method.r: not a setting of method 'full' (its settings: merge)")
    assert "r is a setting of lora, dora, qlora" in msg
    msg = error({"name": "lora", "adapter_size": 7})
    assert msg.startswith("method.adapter_size: not a setting of method 'lora'")
    assert "(its settings: r, alpha, dropout, rslora, target_modules, merge)" in msg
    assert "adapter_size is a setting of adapter" in msg
    assert error({"name": "prefix", "prompt_init": "hi"}).startswith(
        "method.prompt_init: not a setting of method 'prefix'"
    )
    assert error({"name": "ia3", "r": 4}).startswith("method.r: not a setting of method 'ia3'")
    assert error({"name": "freeze", "target_modules": ["q"]}).startswith(
        "method.target_modules: not a setting of method 'freeze'"
    )


def test_an_override_naming_another_method_keeps_the_old_methods_keys(tmp_path):
    from tunelab.config import load_config

    path = tmp_path / "run.yaml"
    path.write_text("model: m\ndata: {train: t.jsonl}\nmethod: {name: lora, r: 8}\n")
    assert load_config(path, ["method.name=dora"]).method.r == 8
    with pytest.raises(ConfigError, match=r"^method\.r: not a setting of method 'full'"):
        load_config(path, ["method.name=full"])


def test_a_typo_is_an_unknown_key_with_the_closest_key():
    msg = error({"name": "lora", "rslroa": True})
    assert msg.startswith("method.rslroa: unknown key; did you mean method.rslora?")
    assert "tunelab train --help" in msg
    assert error({"name": "lora", "rank": 8}).startswith("method.rank: unknown key")


SETTINGS = {  # every key of each method, at a value other than its default
    "full": {"merge": True},
    "freeze": {"train_layers": "0-1,4", "train_embeddings": True, "merge": False},
    "lora": {
        "r": 4,
        "alpha": 8,
        "dropout": 0.0,
        "rslora": True,
        "target_modules": ["query"],
        "merge": False,
    },
    "dora": {"r": 4, "alpha": 8, "dropout": 0.2, "rslora": True, "target_modules": "all-linear"},
    "qlora": {"r": 4, "alpha": 8, "dropout": 0.2, "target_modules": ["q_proj"], "merge": True},
    "adapter": {"adapter_size": 8, "adapter_placement": "houlsby", "merge": False},
    "prefix": {"num_virtual_tokens": 4, "merge": False},
    "prompt": {"num_virtual_tokens": 4, "prompt_init": "classify:"},
    "ia3": {"target_modules": ["key", "value"], "merge": False},
}


@pytest.mark.parametrize("name", METHODS)
def test_each_method_takes_its_own_settings(name):
    method = run({"name": name, **SETTINGS[name]}).method
    assert type(method) is METHOD_CLASSES[name] and method.name == name
    for key, value in SETTINGS[name].items():
        assert getattr(method, key) == value
    assert set(type(method).model_fields) == {"name", *_all_keys(name)}


def _all_keys(name):
    family = {"r", "alpha", "dropout", "rslora", "target_modules", "merge"}
    return {
        "full": {"merge"},
        "freeze": {"train_layers", "train_embeddings", "merge"},
        "lora": family,
        "dora": family,
        "qlora": family,
        "adapter": {"adapter_size", "adapter_placement", "merge"},
        "prefix": {"num_virtual_tokens", "merge"},
        "prompt": {"num_virtual_tokens", "prompt_init", "merge"},
        "ia3": {"target_modules", "merge"},
    }[name]


def test_defaults_and_checks_are_kept():
    lora = run({"name": "lora"}).method
    assert (lora.r, lora.alpha, lora.dropout, lora.rslora, lora.target_modules) == (
        16,
        None,
        0.1,
        False,
        None,
    )
    freeze = run({"name": "freeze"}).method
    assert (freeze.train_layers, freeze.train_embeddings) == (2, False)
    adapter = run({"name": "adapter"}).method
    assert (adapter.adapter_size, adapter.adapter_placement) == (64, "pfeiffer")
    assert run({"name": "prompt"}).method.num_virtual_tokens == 20
    assert error({"name": "lora", "r": 0}) == "method.r: must be > 0, got 0"
    assert (
        error({"name": "lora", "dropout": 1})
        == "method.dropout: input should be less than 1, got 1"
    )
    assert error({"name": "freeze", "train_layers": -1}).startswith(
        "method.train_layers: must be >= 0"
    )
    for name in ("adapter", "prefix", "prompt"):
        assert error({"name": name, "merge": True}) == (
            f"method.merge: {name} cannot be folded into the base weights; leave merge unset"
        )


def test_merges_on_every_method():
    merges = {n: run({"name": n}).method.merges for n in METHODS}
    assert merges == {
        "full": False,
        "freeze": False,
        "lora": True,
        "dora": True,
        "qlora": False,
        "adapter": False,
        "prefix": False,
        "prompt": False,
        "ia3": True,
    }
    assert run({"name": "qlora", "merge": True}).method.merges is True
    assert run({"name": "lora", "merge": False}).method.merges is False


def test_name_omitted_is_lora_and_a_bare_name_is_that_method():
    assert type(validate_config(BASE).method) is LoraMethod
    assert run({"r": 4}).method == LoraMethod(r=4)
    assert type(run("full").method) is FullMethod
    msg = error({"name": "xx"})
    assert msg.startswith("method.name: must be one of 'full', 'freeze', 'lora'")
    assert msg.endswith("got 'xx'")


def test_method_config_builds_and_checks_a_method():
    assert method_config("freeze", train_layers=1) == FreezeMethod(train_layers=1)
    assert method_config() == LoraMethod()
    with pytest.raises(ConfigError, match=r"^method\.r: not a setting of method 'freeze'"):
        method_config("freeze", r=4)
    with pytest.raises(ConfigError, match=r"^method\.r: must be > 0"):
        method_config("lora", r=0)


def test_switch_method_keeps_the_settings_both_have():
    lora = LoraMethod(r=4, target_modules=["query"], merge=False)
    assert switch_method(lora, "dora") == method_config(
        "dora", r=4, target_modules=["query"], merge=False
    )
    assert switch_method(lora, "ia3") == method_config("ia3", target_modules=["query"], merge=False)
    assert switch_method(lora, "full") == FullMethod(merge=False)
    with pytest.raises(ConfigError, match="method.merge: prefix cannot be folded"):
        switch_method(LoraMethod(merge=True), "prefix")


def test_a_resolved_config_dumps_and_loads_back_the_same():
    """config.yaml of a run holds the method's own keys only, and loads back."""
    from pathlib import Path

    import yaml

    from tunelab.config import load_config

    examples = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
    assert examples
    for path in examples:
        cfg = load_config(path)
        dumped = cfg.model_dump(mode="json")
        assert set(dumped["method"]) == set(type(cfg.method).model_fields)
        assert validate_config(yaml.safe_load(yaml.safe_dump(dumped))) == cfg, path.name
