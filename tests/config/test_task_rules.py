"""config's task names and data rules agree with the task registry (config cannot import it)."""

from __future__ import annotations

import pytest

from tunelab.config.schema import TASKS, RunConfig
from tunelab.config.tasks import DEFAULT_TASK, MULTITASK_TASKS, TASK_RULES
from tunelab.errors import ConfigError
from tunelab.tasks import REGISTRY, all_tasks


def test_every_registered_task_is_a_config_task_and_rules_name_config_tasks():
    assert set(REGISTRY) <= set(TASKS)
    assert set(TASK_RULES) <= set(TASKS)
    assert DEFAULT_TASK in REGISTRY


def test_multitask_tasks_are_heads_on_a_shared_encoder():
    kinds = {t.name: t.head_kind for t in all_tasks()}
    assert MULTITASK_TASKS and all(kinds[n] in ("sequence", "token") for n in MULTITASK_TASKS)


def _cfg(task: str, **data) -> dict:
    return {"model": "m", "task": task, "data": {"train": "t.csv", **data}}


@pytest.mark.parametrize(
    "task, data, message",
    [
        ("mlm", {"text_pair": "b"}, "data.text_pair: sentence pairs are for classification"),
        ("seq2seq", {"clean_markup": True}, "data.clean_markup: cleans classification text"),
        ("token-classification", {"prepare": {}}, "token-classification rows are word lists"),
    ],
)
def test_data_rules_follow_the_task(task, data, message):
    from tunelab.config.load import validate_config

    with pytest.raises(ConfigError, match=message):
        validate_config(_cfg(task, **data))
    assert validate_config(_cfg("classification", **data)).task == "classification"


def test_packing_with_virtual_tokens_is_refused_where_the_task_packs():
    from tunelab.config.load import validate_config

    with pytest.raises(ConfigError, match="data.packing"):
        validate_config({**_cfg("causal-lm"), "method": {"name": "prefix"}})
    assert validate_config({**_cfg("seq2seq"), "method": {"name": "prefix"}}).data.packing
    assert isinstance(validate_config(_cfg("causal-lm")), RunConfig)


def test_a_key_only_another_task_reads_is_refused():
    from tunelab.config.load import validate_config

    with pytest.raises(ConfigError, match=r"data.question: read by extractive-qa only"):
        validate_config(_cfg("classification", question="q"))
    assert validate_config(_cfg("extractive-qa", question="q")).data.question == "q"
