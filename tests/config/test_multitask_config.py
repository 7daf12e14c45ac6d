"""`procedure.tasks.<i>.data` is a validated data section: its errors name the entry and key."""

from __future__ import annotations

import copy

import pytest

from tunelab.config import DataConfig, TaskDataConfig
from tunelab.config.load import validate_config
from tunelab.config.multitask import task_config, task_data_configs
from tunelab.errors import ConfigError

MT = {
    "model": "m",
    "method": {"name": "full"},
    "procedure": {
        "name": "multitask",
        "tasks": [
            {"name": "sst2", "task": "classification", "data": {"train": "a.jsonl"}},
            {
                "name": "ner",
                "task": "token-classification",
                "data": {"train": "b.jsonl", "text": "tokens", "label": "ner_tags"},
                "weight": 2,
            },
        ],
    },
}


def error(change) -> str:
    raw = copy.deepcopy(MT)
    change(raw)
    with pytest.raises(ConfigError) as info:
        validate_config(raw)
    return str(info.value)


def tasks(raw):
    return raw["procedure"]["tasks"]


def test_entry_data_is_a_data_section():
    cfg = validate_config(MT)
    data = cfg.procedure.tasks[1].data
    assert isinstance(data, TaskDataConfig) and isinstance(data, DataConfig)
    assert (data.train, data.text, data.label, data.validation_size) == (
        "b.jsonl",
        "tokens",
        "ner_tags",
        0.1,
    )
    assert task_data_configs(cfg) == [e.data for e in cfg.procedure.tasks]


def test_entry_data_errors_name_the_entry_and_key():
    assert error(lambda r: tasks(r)[1]["data"].pop("train")) == (
        "procedure.tasks.1.data.train: required key is missing"
    )
    msg = error(lambda r: tasks(r)[0]["data"].update(max_lenght=64))
    assert msg.startswith("procedure.tasks.0.data.max_lenght: unknown key; did you mean ")
    assert "procedure.tasks.0.data.max_length" in msg
    assert error(lambda r: tasks(r)[0]["data"].update(max_length=0)) == (
        "procedure.tasks.0.data.max_length: must be > 0, got 0"
    )
    assert error(lambda r: tasks(r)[1]["data"].update(text_pair="other")) == (
        "procedure.tasks.1.data.text_pair: sentence pairs are for classification, "
        "not task 'token-classification'"
    )
    assert error(lambda r: tasks(r)[0]["data"].update(text_pair="text")) == (
        "procedure.tasks.0.data.text_pair: must differ from data.text"
    )
    assert error(lambda r: tasks(r)[0]["data"].update(prepare={})).startswith(
        "procedure.tasks.0.data.prepare: not supported with procedure multitask"
    )


def test_checks_across_entries_and_the_run():
    assert error(lambda r: tasks(r)[1].update(name="sst2")) == (
        "procedure.tasks.1.name: two tasks share this name, got 'sst2'"
    )
    assert error(lambda r: tasks(r)[0].update(name="my task")) == (
        "procedure.tasks.0.name: letters, digits, '_' and '-' only, got 'my task'"
    )
    assert error(lambda r: r.update(data={"train": "x"})).startswith(
        "data: procedure multitask reads each task's data from procedure.tasks.<i>.data"
    )
    assert error(lambda r: r.update(method={"name": "prefix"})).startswith(
        "method.name: procedure multitask saves one plain model per task"
    )
    assert error(lambda r: r.update(method={"name": "lora", "merge": False})).startswith(
        "method.merge: procedure multitask saves one merged model per task"
    )


def test_task_config_is_a_single_task_run_with_that_entrys_data():
    cfg = validate_config(MT)
    one = task_config(cfg, 1, cfg.procedure.tasks[1].data)
    assert (one.task, one.procedure.name, one.data.text) == (
        "token-classification",
        "standard",
        "tokens",
    )
    assert (one.model, one.method, one.train) == (cfg.model, cfg.method, cfg.train)
