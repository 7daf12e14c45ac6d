"""A run's config.yaml written before methods had their own sections still loads back."""

from __future__ import annotations

import json

import pytest
import yaml

from tunelab.config import load_config
from tunelab.config.legacy import OLD_METHOD_DEFAULTS, read_run_config
from tunelab.config.load import validate_config
from tunelab.errors import ConfigError, RunDirError
from tunelab.training.rundir import FINGERPRINT, prepare_run_dir, user_config


def _old_style(method: str, **changed) -> dict:
    """A resolved config as tunelab dumped it then: every method key in `method`."""
    cfg = validate_config({"model": "m", "data": {"train": "t.csv"}, "method": method})
    raw = cfg.model_dump(mode="json")
    raw["method"] = {"name": method, **OLD_METHOD_DEFAULTS, **changed}
    return raw


@pytest.mark.parametrize("method", ["full", "lora", "adapter", "prefix"])
def test_an_old_config_yaml_loads_with_a_note(tmp_path, capsys, method):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_old_style(method)))
    with pytest.raises(ConfigError, match="not a setting of method"):
        load_config(path)  # what a user writes stays strict
    cfg = read_run_config(path)
    assert cfg.method.name == method
    assert "note:" in capsys.readouterr().err
    if method == "lora":
        assert cfg.method.r == 16 and cfg.method.dropout == 0.1


def test_another_methods_key_away_from_its_default_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_old_style("full", r=8)))
    with pytest.raises(ConfigError, match=r"config.yaml: method.r: not a setting") as exc:
        read_run_config(path)
    assert exc.value.path == "method.r"


def test_resume_accepts_a_run_dir_fingerprinted_before_the_union(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    old = _old_style("full")
    old.pop("versions"), old.pop("search")
    (run / FINGERPRINT).write_text(json.dumps(old))
    cfg = validate_config({"model": "m", "data": {"train": "t.csv"}, "method": "full"})
    assert user_config(cfg) != old
    prepare_run_dir(run, cfg, overwrite=False, resume=True)  # no "config differs"
    other = validate_config({"model": "m", "data": {"train": "t.csv"}, "method": "freeze"})
    with pytest.raises(RunDirError, match="config differs at method"):
        prepare_run_dir(run, other, overwrite=False, resume=True)
