"""`tunelab train --time-budget`: on a tiny model and toy data, a search within the budget
whose best trial becomes the run (a loadable model scoring what the trial scored, baselines
in results.json), trials that cannot finish in time are stopped, durations parse, and a bad
--time-budget is one line naming the flag. No assertion is tighter on time than the
behaviour needs: verdicts hold on a machine several times slower."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import tiny_config

from tunelab import api
from tunelab.errors import ConfigError, TunelabError
from tunelab.runs.time_budget import LR_SCALE_RANGE, default_space, parse_duration


@pytest.fixture(scope="module")
def budget_run(tiny_model, toy_data, tmp_path_factory):
    """A plain run of the config first (it also warms the process up); the budget is twice
    its duration (at least 20 s), so that the config as written fits on any machine."""
    root = tmp_path_factory.mktemp("budget")
    cfg = tiny_config(tiny_model, toy_data, root / "plain", eval={"baselines": ["majority"]})
    t0 = time.perf_counter()
    plain = api.train(cfg)
    budget = max(20.0, 2 * (time.perf_counter() - t0))
    cfg["output"] = str(root / "run")
    t0 = time.perf_counter()
    results = api.train(cfg, time_budget=f"{budget:.0f}s")
    wall = time.perf_counter() - t0
    search = json.loads((root / "run" / "search.json").read_text())
    return root / "run", results, search, wall, plain, round(budget)


def test_trials_ran_and_the_first_is_the_config_as_written(budget_run):
    out, _, search, _, plain, _ = budget_run
    trials = search["trials"]
    assert trials and search["default_space"] is True
    assert any(t["state"] == "complete" for t in trials)
    first = trials[0]  # tiny_config: method full, lr 2e-3, 3 epochs
    assert first["params"] == {"method.name": "full", "train.lr": 2e-3, "train.epochs": 3}
    assert first["state"] == "complete" and Path(first["output"]) == out / "trial-000"
    # same config, same seed: the plain run's score, so the search can only do better
    assert first["value"] == pytest.approx(plain["validation"]["f1_macro"], abs=1e-6)
    assert search["best"]["value"] >= first["value"]
    lr_range = search["lr_by_method"]
    assert lr_range["full"] == pytest.approx([2e-3 * r for r in LR_SCALE_RANGE])
    assert lr_range["lora"] == pytest.approx([1e-3 * r for r in LR_SCALE_RANGE])
    for t in trials:
        method, lr = t["params"]["method.name"], t["params"]["train.lr"]
        assert method in ("full", "lora") and 1 <= t["params"]["train.epochs"] <= 3
        low, high = lr_range[method]
        assert low * 0.99 <= lr <= high * 1.01  # the lr range follows the method
        if t["state"] == "complete":
            results = json.loads((Path(t["output"]) / "results.json").read_text())
            assert results["run"]["method"] == method
            assert t["value"] == pytest.approx(results["validation"]["f1_macro"])


def test_output_is_the_best_trial_as_a_run(budget_run, toy_data):
    out, results, search, _, _, _ = budget_run
    done = [t for t in search["trials"] if t["state"] == "complete"]
    best = search["best"]
    assert best["value"] == max(t["value"] for t in done)
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    assert results["run"]["output"] == str(out)
    assert results["validation"]["f1_macro"] == pytest.approx(best["value"])
    assert results["search"]["best_trial"] == best["trial"]
    assert results["search"]["file"] == str(out / "search.json")
    assert "majority" in results["baselines"]  # computed once, by the first trial to finish
    assert (out / "report.html").is_file() and (out / "search.png").is_file()
    # the model in OUTPUT/ loads and scores what the best trial scored on validation
    scores = api.evaluate(out / "model", toy_data["validation"], split="validation")
    assert scores["validation"]["f1_macro"] == pytest.approx(best["value"], abs=1e-6)
    import yaml

    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["output"] == str(out) and resolved["eval"]["baselines"] == ["majority"]
    assert resolved["method"]["name"] == best["params"]["method.name"]
    assert resolved["train"]["lr"] == pytest.approx(best["params"]["train.lr"])


def test_wall_time_stays_near_the_budget(budget_run):
    _, _, search, wall, _, budget = budget_run
    assert search["time_budget"] == budget
    longest = max(t["seconds"] or 0 for t in search["trials"])
    # a trial that starts before the deadline can end after it only by what the pace of
    # the trials before it misjudged: allow one whole trial beyond the budget, and slack
    assert wall <= budget + longest + 15
    assert search["seconds"] <= wall


def test_a_trial_that_cannot_finish_in_time_is_stopped(tiny_model, toy_data, tmp_path):
    # 400 epochs of 20 steps: far longer than the budget on any machine; evaluated each epoch
    out = tmp_path / "run"
    cfg = tiny_config(tiny_model, toy_data, out, train={"epochs": 400})
    cfg["search"] = {"space": {"train.lr": {"type": "float", "low": 1e-3, "high": 3e-3}}}
    t0 = time.perf_counter()
    with pytest.raises(TunelabError, match=r"--time-budget 8s: no trial finished") as exc:
        api.train(cfg, time_budget=8)
    wall = time.perf_counter() - t0
    search = json.loads((out / "search.json").read_text())
    first = search["trials"][0]
    assert first["state"] == "pruned" and first["stopped"].startswith("stopped at evaluation")
    assert "stopped at evaluation" in str(exc.value)
    # stopped after a few of its 400 evaluations: the search ends soon after the trial does
    assert len(first["intermediate"]) < 10
    assert wall < first["seconds"] + 20
    assert not (out / "model").exists() and not (out / "results.json").exists()


@pytest.mark.parametrize(
    "text, seconds",
    [("600", 600), ("10m", 600), ("1h", 3600), ("90s", 90), ("1h30m", 5400), (" 2.5m ", 150)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten", "10x", "m", "-5", "0", "0s", "1e3", "5 minutes"])
def test_parse_duration_rejects(text):
    with pytest.raises(ConfigError, match=r"^--time-budget: "):
        parse_duration(text)


def test_default_space_by_task_and_method(tiny_model, toy_data, tmp_path):
    from tunelab.config.load import validate_config

    cfg = validate_config(tiny_config(tiny_model, toy_data, tmp_path / "o"))
    space = default_space(cfg, 9.0)
    assert space["method.name"]["choices"] == ["full", "lora"]
    assert space["train.epochs"] == {"type": "int", "low": 3, "high": 9}
    steps = validate_config(
        tiny_config(tiny_model, toy_data, tmp_path / "o", train={"max_steps": 5})
    )
    assert "train.epochs" not in default_space(steps, 3.0)


def test_cli_bad_time_budget_names_the_flag(tiny_model, toy_data, tmp_path, capsys):
    import yaml

    from tunelab.cli.commands import main

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tiny_model, toy_data, tmp_path / "o")))
    assert main(["train", str(path), "--time-budget", "ten minutes"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --time-budget: not a duration")
    assert not (tmp_path / "o").exists()
    assert main(["train", str(path), "--time-budget", "10m", "--resume"]) == 2
    assert "--resume" in capsys.readouterr().err
