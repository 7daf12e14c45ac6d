"""The config keys are generated from the schema, for `--help` and the typo error."""

from __future__ import annotations

from tunelab.config import config_keys, format_keys


def by_key():
    out = {}
    for k in config_keys():
        out.setdefault(k.key, []).append(k)
    return out


def test_the_list_holds_keys_of_every_section():
    keys = by_key()
    for key in (
        "model",
        "task",
        "output",
        "data.train",
        "data.target",
        "data.packing",
        "data.prepare.split.ratios",
        "eval.few_shot",
        "generation.max_new_tokens",
        "train.early_stopping.patience",
        "search.metric",
        "search.sampler",
        "search.space",
        "search.space.<key>.low",
        "search.space.<key>.choices",
        "method.name",
        "method.r",
        "method.merge",
        "procedure.name",
        "procedure.teacher",
        "procedure.tasks.<i>.data.train",
        "procedure.tasks.<i>.weight",
    ):
        assert key in keys, key
    assert "data.prepare.seed" in keys and "procedure.tasks.<i>.data.prepare.seed" not in keys


def test_keys_carry_type_default_description_and_the_member_they_belong_to():
    keys = by_key()
    (lr,) = keys["train.lr"]
    assert (lr.type, lr.default, lr.when) == ("float | None", "None", "")
    assert "by method" in lr.description
    assert [(k.when, k.default) for k in keys["method.r"]] == [
        ("method.name: lora", "16"),
        ("method.name: dora", "16"),
        ("method.name: qlora", "16"),
    ]
    assert {k.when for k in keys["method.merge"]} == {
        f"method.name: {n}"
        for n in ("full", "freeze", "lora", "dora", "qlora", "adapter", "prefix", "prompt", "ia3")
    }
    (name,) = keys["method.name"]
    assert name.choices[:3] == ("full", "freeze", "lora") and name.default == "'lora'"
    (proc,) = keys["procedure.name"]
    assert "multitask" in proc.choices and proc.default == "'standard'"
    (teacher,) = keys["procedure.teacher"]
    assert (teacher.default, teacher.when) == ("required", "procedure.name: distill")
    assert keys["data.prepare"][0].section and not keys["data.train"][0].section
    assert keys["search.space.<key>.choices"][0].when == "search.space.<key>.type: categorical"


def test_format_keys_lists_sections_and_members():
    text = format_keys()
    lines = text.splitlines()
    assert lines[0].startswith("model, task, data, method, train")
    assert (
        "method.name: full | freeze | lora | dora | qlora | adapter | prefix | prompt | ia3"
        in lines
    )
    assert (
        "method.{r, alpha, dropout, rslora, target_modules, merge}  (method.name: lora | dora |"
        in text
    )
    assert "eval.{batch_size, baselines, few_shot, generate_rows}" in lines
    assert "generation.{max_new_tokens," in text and "procedure.{teacher," in text
    assert max(len(line) for line in lines) <= 88


def test_the_unknown_key_error_suggests_the_closest_generated_key():
    import pytest

    from tunelab.config.load import validate_config
    from tunelab.errors import ConfigError

    base = {"model": "m", "data": {"train": "t.jsonl"}}
    for raw, start in [
        ({"modle": "m"}, "modle: unknown key; did you mean model?"),
        (
            {"train": {"max_length": 64}},
            "train.max_length: unknown key; did you mean data.max_length?",
        ),
        ({"eval": {"fewshot": 2}}, "eval.fewshot: unknown key; did you mean eval.few_shot?"),
        ({"generation": {"max_new_token": 8}}, "generation.max_new_token: unknown key; did you"),
    ]:
        with pytest.raises(ConfigError) as info:
            validate_config({**base, **raw})
        assert str(info.value).startswith(start), str(info.value)
        assert "`tunelab train --help` lists the keys" in str(info.value)
