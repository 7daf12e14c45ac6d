"""Alert rules: loading and validation, evaluation, and the defaults' Bonferroni level."""

import json

import pytest

from tunelab.errors import TunelabError
from tunelab.monitor.rules import DEFAULT_RULES, RulesError, evaluate, load_rules

STATS = {
    "embedding": {"mmd_p": 0.001, "domain_p": 0.5, "newest": []},
    "prediction": None,
    "input": {"length_ks_p": None, "languages": {"en": 0.8, "de": 0.2}},
    "ops": {"error_rate": 0.2, "n": 200},
}


def test_defaults_are_bonferroni_over_the_p_value_tests():
    assert load_rules(None) == DEFAULT_RULES
    assert {r["stat"] for r in DEFAULT_RULES} == {
        "embedding.mmd_p",
        "embedding.domain_p",
        "prediction.chi2_p",
        "input.length_ks_p",
    }
    assert sum(r["value"] for r in DEFAULT_RULES) == pytest.approx(0.05)
    assert all(r["op"] == "<" for r in DEFAULT_RULES)


def test_evaluate_fires_only_known_values_past_threshold():
    alerts = evaluate(STATS, DEFAULT_RULES, window=3, slice="a", model="m")
    assert [a["stat"] for a in alerts] == ["embedding.mmd_p"]  # None stats never fire
    a = alerts[0]
    assert a["observed"] == 0.001 and a["window"] == 3 and a["slice"] == "a" and a["model"] == "m"
    assert set(a) == {
        "rule",
        "stat",
        "op",
        "value",
        "observed",
        "window",
        "slice",
        "model",
        "message",
    }
    assert "window 3" in a["message"] and "slice a" in a["message"]
    json.dumps(alerts)


def test_user_rules_from_yaml_and_json(tmp_path):
    y = tmp_path / "rules.yaml"
    y.write_text(
        "rules:\n  - {stat: ops.error_rate, op: '>=', value: 0.1, name: errors}\n"
        "  - {stat: input.languages.de, op: '>', value: 0.5}\n"
        "  - {stat: input.languages.fr, op: '<', value: 0.01}\n"
    )
    rules = load_rules(y)
    fired = evaluate(STATS, rules, window=0)
    assert [a["rule"] for a in fired] == ["errors", "input.languages.fr < 0.01"]
    j = tmp_path / "rules.json"
    j.write_text(json.dumps({"monitor": {"rules": [{"stat": "ops.n", "op": "<", "value": 300}]}}))
    assert len(evaluate(STATS, load_rules(j))) == 1


@pytest.mark.parametrize(
    "rule,needle",
    [
        ({"stat": "embedding.nope", "op": "<", "value": 1}, "unknown stat 'embedding.nope'"),
        ({"stat": "ops.n", "op": "==", "value": 1}, "op must be one of"),
        ({"stat": "ops.n", "op": "<", "value": "x"}, "value must be a finite number"),
        ({"stat": "ops.n", "op": "<"}, "missing ['value']"),
        ({"stat": "ops.n", "op": "<", "value": 1, "oops": 2}, "unknown key(s)"),
    ],
)
def test_bad_rule_names_file_and_index(tmp_path, rule, needle):
    p = tmp_path / "r.json"
    p.write_text(json.dumps([{"stat": "ops.n", "op": ">", "value": 0}, rule]))
    with pytest.raises(RulesError) as e:
        load_rules(p)
    assert isinstance(e.value, TunelabError)
    assert str(e.value).startswith(f"{p}, rule 1: ") and needle in str(e.value)


def test_unreadable_or_invalid_file(tmp_path):
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [unclosed\n")
    with pytest.raises(RulesError, match="not valid YAML"):
        load_rules(bad)
    with pytest.raises(RulesError, match="rules, rule 0"):
        load_rules([{"stat": "x.y", "op": "<", "value": 1}])
