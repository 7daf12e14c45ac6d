"""Hyperparameter search (`tunelab tune`) on a tiny model and toy data: trials run, the best
is really the best, its config retrains to the same score, a useless learning rate gets
pruned from the scores reported through on_eval, and bad spaces fail before any trial."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import tiny_config

from tunelab import api
from tunelab.config import load_config
from tunelab.errors import ConfigError

GOOD, USELESS = 5e-3, 1e-9

SPACE = {
    # a categorical learning rate: 1e-9 leaves the random model where it started, so its
    # validation score at the first evaluation is far below a trial that learns
    "train.lr": {"type": "categorical", "choices": [GOOD, USELESS]},
    "train.warmup_ratio": {"type": "float", "low": 0.0, "high": 0.1},
}


def _config(tiny_model, toy_data, out: Path, **search) -> dict:
    files = {k: v for k, v in toy_data.items() if k != "test"}
    # evaluations at steps 35 and 50: by step 35 the good lr has learned the toy task
    train = {"max_steps": 50, "eval_steps": 35, "batch_size": 16}
    cfg = tiny_config(tiny_model, files, out, train=train)
    cfg["search"] = {"sampler": "random", "startup_trials": 1, "space": SPACE, **search}
    return cfg


@pytest.fixture(scope="module")
def search(tiny_model, toy_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("search") / "s"
    summary = api.tune(_config(tiny_model, toy_data, out), trials=4)
    return out, summary


def test_runs_the_trials_and_writes_results(search):
    out, summary = search
    assert json.loads((out / "search.json").read_text()) == json.loads(json.dumps(summary))
    assert [t["trial"] for t in summary["trials"]] == list(range(4))
    assert summary["metric"] == "f1_macro" and summary["direction"] == "maximize"
    assert (out / "search.png").stat().st_size > 5000
    for t in summary["trials"]:
        assert Path(t["output"]) == out / f"trial-{t['trial']:03d}"
        assert t["seconds"] > 0
        assert set(t["params"]) == set(SPACE)
        if t["state"] == "complete":  # a full run: the value is its validation score
            results = json.loads((Path(t["output"]) / "results.json").read_text())
            assert t["value"] == pytest.approx(results["validation"]["f1_macro"])
            assert results["baselines"] == {}  # trials skip the baselines


def test_best_trial_has_the_best_metric(search):
    _, summary = search
    done = [t for t in summary["trials"] if t["state"] == "complete"]
    assert summary["best"]["value"] == max(t["value"] for t in done)
    best = next(t for t in done if t["trial"] == summary["best"]["trial"])
    assert best["params"] == summary["best"]["params"]
    assert best["params"]["train.lr"] == GOOD and best["value"] > 0.8


def test_best_config_loads_and_retrains_to_the_best_score(search):
    out, summary = search
    cfg = load_config(out / "best_config.yaml")
    params = summary["best"]["params"]
    assert cfg.train.lr == params["train.lr"]
    assert cfg.train.warmup_ratio == pytest.approx(params["train.warmup_ratio"])
    assert cfg.search is None and cfg.output == str(out / "best")
    results = api.train(out / "best_config.yaml")  # same seed, same values: same run
    assert results["validation"]["f1_macro"] == pytest.approx(summary["best"]["value"], abs=1e-6)


def test_on_eval_reports_reach_optuna_and_prune_the_useless_lr(search):
    _, summary = search
    trials = summary["trials"]
    for t in trials:  # Optuna's intermediate values are the run's logged validation scores
        logged = [
            json.loads(line)
            for line in (Path(t["output"]) / "metrics.jsonl").read_text().splitlines()
        ]
        scores = [m["f1_macro"] for m in logged if m["split"] == "validation"]
        assert [i["value"] for i in t["intermediate"]] == pytest.approx(scores)
        assert [i["evaluation"] for i in t["intermediate"]] == list(range(1, len(scores) + 1))
    first_good = min(t["trial"] for t in trials if t["params"]["train.lr"] == GOOD)
    later_useless = [
        t for t in trials if t["trial"] > first_good and t["params"]["train.lr"] == USELESS
    ]
    assert later_useless, "the seed should sample the useless lr after a good trial"
    for t in later_useless:
        assert t["state"] == "pruned" and len(t["intermediate"]) == 1  # stopped at evaluation 1
        run = Path(t["output"])  # left consistent: no model, no checkpoints, trial.json says why
        assert not (run / "model").exists() and not (run / "results.json").exists()
        assert [p.name for p in (run / "checkpoints").iterdir()] == ["config.json"]
        assert json.loads((run / "trial.json").read_text())["state"] == "pruned"
    assert all(t["state"] == "complete" for t in trials if t["params"]["train.lr"] == GOOD)


@pytest.mark.parametrize(
    "space, message",
    [
        ({"train.lrr": {"type": "float", "low": 1e-5, "high": 1e-3}}, "train has no 'lrr'"),
        ({"train.early_stopping": {"type": "categorical", "choices": [1]}}, "is a section"),
        (
            {"method.r": {"type": "int", "low": 0, "high": 8}},
            r"method has no 'r' \(keys: name, merge\)",
        ),  # method full
        ({"output": {"type": "categorical", "choices": ["a"]}}, "cannot be searched"),
    ],
)
def test_bad_space_fails_before_any_trial(tiny_model, toy_data, tmp_path, space, message):
    cfg = _config(tiny_model, toy_data, tmp_path / "s")
    cfg["search"]["space"] = space
    with pytest.raises(ConfigError, match=message) as exc:
        api.tune(cfg, trials=2)
    assert str(exc.value).startswith(f"search.space.{next(iter(space))}:")
    assert not (tmp_path / "s").exists()  # nothing ran


def test_space_spec_errors_name_the_path(tiny_model, toy_data, tmp_path):
    cfg = _config(tiny_model, toy_data, tmp_path / "s")
    cfg["search"]["space"] = {"train.lr": {"type": "float", "low": 0, "high": 1e-3, "log": True}}
    with pytest.raises(ConfigError, match=r"^search\.space\.train\.lr\.log: needs low > 0"):
        api.tune(cfg, trials=2)


def test_cli_tune_prints_the_table(tiny_model, toy_data, tmp_path, capsys):
    import yaml

    from tunelab.cli.commands import main

    cfg = _config(tiny_model, toy_data, tmp_path / "s", pruner="none")
    cfg["train"].update(max_steps=5, eval_steps=5)
    cfg["search"]["space"] = {"train.lr": {"type": "float", "low": 1e-3, "high": 3e-3, "log": True}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["tune", str(path), "--trials", "1"]) == 0
    out = capsys.readouterr().out
    assert "trial 1/1" in out  # the progress line
    assert "train.lr" in out and "complete" in out and "best config:" in out
    assert main(["tune", str(path), "--trials", "1"]) == 2  # refuses to clobber the search
