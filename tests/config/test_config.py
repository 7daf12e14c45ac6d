"""Config loading: YAML + `key.sub=value` overrides; every error names the dotted path and value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tunelab.config import RunConfig, load_config, parse_overrides
from tunelab.errors import ConfigError

BASE = {
    "model": "all-minilm-l6-v2",
    "data": {"train": "train.jsonl", "validation": "dev.jsonl"},
    "method": {"name": "lora", "r": 8},
    "train": {"epochs": 2, "batch_size": 16, "early_stopping": {"patience": 2}},
    "output": "runs/x",
}


@pytest.fixture
def cfg_file(tmp_path: Path) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(BASE), encoding="utf-8")
    return path


def config_error(path: Path, overrides: list[str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    return info.value


# --- overrides ---------------------------------------------------------------------------


def test_parse_overrides_values_are_yaml_typed_and_nested() -> None:
    got = parse_overrides(
        [
            "train.batch_size=8",
            "train.warmup_ratio=0.1",
            "train.group_by_length=false",
            "method.target_modules=[query, value]",
            "method.name=full",
            "train.early_stopping.patience=5",
            "data.test=",
        ]
    )
    assert got == {
        "train": {
            "batch_size": 8,
            "warmup_ratio": 0.1,
            "group_by_length": False,
            "early_stopping": {"patience": 5},
        },
        "method": {"target_modules": ["query", "value"], "name": "full"},
        "data": {"test": None},
    }


def test_override_without_equals_sign_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"train\.lr: override must look like key\.sub=value"):
        parse_overrides(["train.lr"])


def test_load_yaml_and_overrides_merge_nested(cfg_file: Path) -> None:
    cfg = load_config(
        cfg_file,
        ["train.lr=1e-4", "train.early_stopping.metric=accuracy", "method.r=4", "data.text=review"],
    )
    assert isinstance(cfg, RunConfig)
    assert cfg.train.lr == pytest.approx(1e-4) and isinstance(cfg.train.lr, float)
    # siblings of an overridden key survive the merge, at every depth
    assert cfg.train.epochs == 2 and cfg.train.batch_size == 16
    assert cfg.train.early_stopping.metric == "accuracy"
    assert cfg.train.early_stopping.patience == 2
    assert (cfg.method.name, cfg.method.r) == ("lora", 4)
    assert (cfg.data.train, cfg.data.validation, cfg.data.text) == (
        "train.jsonl",
        "dev.jsonl",
        "review",
    )
    # untouched sections keep their defaults
    assert cfg.eval.batch_size == 64 and cfg.task == "classification"


def test_overrides_alone_make_a_config() -> None:
    cfg = load_config(None, ["model=m", "data.train=t.csv", "train.max_steps=3"])
    assert (cfg.model, cfg.data.train, cfg.train.max_steps) == ("m", "t.csv", 3)


def test_override_can_clear_a_value(cfg_file: Path) -> None:
    assert load_config(cfg_file, ["data.validation=null"]).data.validation is None


# --- errors name the dotted path and the value --------------------------------------------


def test_lr_must_be_positive(cfg_file: Path) -> None:
    err = config_error(cfg_file, ["train.lr=-1"])
    assert str(err) == "train.lr: must be > 0, got -1"
    assert err.path == "train.lr"


def test_ge_bound_in_nested_section(cfg_file: Path) -> None:
    err = config_error(cfg_file, ["train.early_stopping.patience=0"])
    assert str(err) == "train.early_stopping.patience: must be >= 1, got 0"


def test_unknown_key_names_its_path(cfg_file: Path) -> None:
    msg = str(config_error(cfg_file, ["train.foo=1"]))
    assert msg.startswith("train.foo: unknown key")
    assert "tunelab train --help" in msg


def test_unknown_key_in_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump({**BASE, "method": {"name": "lora", "rank": 8}}))
    assert str(config_error(path)).startswith("method.rank: unknown key")


def test_wrong_type_names_path_and_value(cfg_file: Path) -> None:
    msg = str(config_error(cfg_file, ["train.batch_size=abc"]))
    assert msg.startswith("train.batch_size: ")
    assert "integer" in msg
    assert msg.endswith("got 'abc'")


def test_bad_enum_lists_the_choices(cfg_file: Path) -> None:
    msg = str(config_error(cfg_file, ["method.name=xx"]))
    assert msg.startswith("method.name: ")
    for choice in ("'full'", "'freeze'", "'lora'"):
        assert choice in msg
    assert msg.endswith("got 'xx'")


def test_missing_model(tmp_path: Path) -> None:
    path = tmp_path / "nomodel.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in BASE.items() if k != "model"}))
    err = config_error(path)
    assert str(err) == "model: required key is missing"
    assert err.path == "model"


def test_missing_nested_required_key(tmp_path: Path) -> None:
    path = tmp_path / "nodata.yaml"
    path.write_text(yaml.safe_dump({"model": "m", "data": {"text": "t"}}))
    assert str(config_error(path)) == "data.train: required key is missing"


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("model: m\ndata:\n  train: a.jsonl\n bad: [\n")
    msg = str(config_error(path))
    assert str(path) in msg
    assert "(line 4)" in msg
    assert "not valid YAML" in msg


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    assert "the top level must be a mapping" in str(config_error(path))


def test_config_file_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert str(config_error(missing)) == f"config file not found: {missing}"


def test_empty_yaml_file_reports_missing_model(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert str(config_error(path)) == "model: required key is missing"
