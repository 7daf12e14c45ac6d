"""`updated` changes a config and validates the result, unlike `model_copy(update=...)`."""

from __future__ import annotations

import pytest

from tunelab.config import DataConfig, FullMethod, LoraMethod, RunConfig, updated
from tunelab.config.load import validate_config
from tunelab.errors import ConfigError

CFG = validate_config({"model": "m", "data": {"train": "t.jsonl"}, "method": {"r": 8}})


def error(model, **changes) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        updated(model, **changes)
    return info.value


def test_model_copy_skips_validation_updated_does_not():
    assert CFG.model_copy(update={"task": "nonsense"}).task == "nonsense"  # why updated exists
    err = error(CFG, task="nonsense")
    assert err.path == "task" and str(err).endswith("got 'nonsense'")


def test_a_new_validated_copy():
    new = updated(CFG, task="seq2seq", **{"data.max_length": 128, "train.lr": 1e-4})
    assert isinstance(new, RunConfig) and new is not CFG
    assert (new.task, new.data.max_length, new.train.lr) == ("seq2seq", 128, 1e-4)
    assert (CFG.task, CFG.data.max_length) == ("classification", None)  # unchanged
    assert new.method == CFG.method and new.data.train == "t.jsonl"


def test_bad_values_name_the_dotted_path():
    assert str(error(CFG, **{"data.max_length": 0})) == "data.max_length: must be > 0, got 0"
    assert str(error(CFG, **{"train.early_stopping.patience": 0})) == (
        "train.early_stopping.patience: must be >= 1, got 0"
    )
    assert str(error(CFG, **{"method.name": "full"})).startswith(
        "method.r: not a setting of method 'full'"
    )
    assert str(error(CFG, **{"data.text_pair": "text"})) == (
        "data.text_pair: must differ from data.text"
    )
    assert str(error(CFG, **{"train.bogus": 1})).startswith("train.bogus: unknown key")
    # a section built with model_copy is validated too
    bad = CFG.data.model_copy(update={"max_length": -3})
    assert str(error(CFG, data=bad)) == "data.max_length: must be > 0, got -3"


def test_a_section_alone_and_its_place():
    data = updated(CFG.data, max_length=64)
    assert isinstance(data, DataConfig) and data.max_length == 64
    assert str(error(CFG.data, max_length=0)) == "max_length: must be > 0, got 0"
    with pytest.raises(ConfigError, match=r"^procedure\.tasks\.0\.data\.max_length: must be > 0"):
        updated(CFG.data, _at="procedure.tasks.0.data", max_length=0)
    assert str(error(CFG.method, r=0)) == "method.r: must be > 0, got 0"


def test_a_union_member_may_change_its_name():
    assert updated(LoraMethod(), name="full") == FullMethod()
    assert updated(CFG.method, name="dora").r == 8
    assert updated(CFG, **{"procedure.name": "distill", "procedure.teacher": "t"}).procedure.teacher
    assert str(error(CFG, **{"procedure.teacher": "t"})).startswith(
        "procedure.teacher: not a setting of procedure 'standard'"
    )


def test_list_entries_by_index():
    cfg = validate_config(
        {
            "model": "m",
            "method": "full",
            "procedure": {
                "name": "multitask",
                "tasks": [
                    {"name": "a", "task": "classification", "data": {"train": "a.jsonl"}},
                    {"name": "b", "task": "classification", "data": {"train": "b.jsonl"}},
                ],
            },
        }
    )
    new = updated(cfg, **{"procedure.tasks.1.data.max_length": 32, "procedure.tasks.0.weight": 2})
    assert [t.data.max_length for t in new.procedure.tasks] == [None, 32]
    assert [t.weight for t in new.procedure.tasks] == [2, 1]
    assert str(error(cfg, **{"procedure.tasks.1.data.max_length": 0})) == (
        "procedure.tasks.1.data.max_length: must be > 0, got 0"
    )
    with pytest.raises(ConfigError, match=r"^procedure\.tasks\.5: no such entry"):
        updated(cfg, **{"procedure.tasks.5.weight": 1})
