"""Hyperparameter search (`tunelab tune`): Optuna over the `search:` section of a run config.

Run level, like runs/train.py: each trial is one `run_training` with the trial's values set at the
space's dotted config paths, in its own run folder `<output>/trial-NNN/`. Validation scores
reach Optuna through run_training's `on_eval` callback, so the median pruner can stop a bad
trial after any evaluation. A pruned trial's folder keeps its config, metrics and a
trial.json saying why it stopped; its checkpoints are removed (nothing will resume it).
Results: search.json (rewritten after every trial), best_config.yaml (the best trial's full
resolved config, runnable with `tunelab train`) and search.png (see runs/search_report.py).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tunelab.atomic import atomic_write_json
from tunelab.config import RunConfig
from tunelab.config.load import validate_config
from tunelab.config.reference import _models
from tunelab.errors import ConfigError, RunDirError, TunelabError
from tunelab.metrics.classification import primary_metric_mode
from tunelab.runs.search_report import plot_search, progress_line, trial_record, write_best
from tunelab.runs.train import run_training
from tunelab.tasks import get_task

NOT_SEARCHABLE = ("output", "search", "versions")


def check_space(cfg: RunConfig) -> None:
    """Every `search.space` path names a value of the config, and every value the space can
    produce (low, high, each choice) passes validation there. Raises a ConfigError naming
    `search.space.<path>`; runs before any trial (and any weights load)."""
    if cfg.search is None:
        raise ConfigError("search", "the config has no search: section (what to search over)")
    base = _raw(cfg)
    for path, spec in cfg.search.space.items():
        where = f"search.space.{path}"
        _check_path(cfg, path, where)
        probes = spec.choices if spec.type == "categorical" else [spec.low, spec.high]
        for value in probes:
            try:
                validate_config(set_path(base, path, value))
            except ConfigError as exc:
                raise ConfigError(where, f"{value!r} is not a valid value here ({exc})") from None


def _check_path(cfg: RunConfig, path: str, where: str) -> None:
    parts = path.split(".")
    if not all(parts):
        raise ConfigError(where, "not a dotted config path (empty part)")
    if parts[0] in NOT_SEARCHABLE:
        raise ConfigError(where, f"'{parts[0]}' cannot be searched")
    node: Any = cfg
    cls: type[BaseModel] | None = type(cfg)
    for i, part in enumerate(parts):
        here = ".".join(parts[:i]) or "the config"
        if cls is None:
            raise ConfigError(where, f"{here} is a value, not a section with keys")
        if part not in cls.model_fields:
            keys = ", ".join(cls.model_fields)
            raise ConfigError(where, f"not a config key: {here} has no '{part}' (keys: {keys})")
        value = getattr(node, part) if node is not None else None
        if isinstance(value, BaseModel):
            node, cls = value, type(value)
            continue
        sections = _models(cls.model_fields[part].annotation)
        node, cls = None, (sections[0] if len(sections) == 1 else None)
    if cls is not None:
        raise ConfigError(where, "is a section; name one of its keys")


def _raw(cfg: RunConfig) -> dict:
    return cfg.model_dump(mode="json", exclude={"versions"})


def set_path(raw: dict, path: str, value: Any) -> dict:
    """A copy of the nested dict `raw` with `value` at dotted `path` (sections created)."""
    out = dict(raw)
    node = out
    parts = path.split(".")
    for part in parts[:-1]:
        node[part] = dict(node.get(part) or {})
        node = node[part]
    node[parts[-1]] = value
    return out


def resolve_metric(cfg: RunConfig) -> tuple[str, str]:
    """(metric, "maximize" | "minimize"): search.metric, else the early-stopping metric."""
    es = cfg.train.early_stopping
    default = es.metric or get_task(cfg.task).default_metric
    metric = cfg.search.metric or default
    direction = cfg.search.direction
    if direction is None:
        mode = es.mode if (metric == default and es.mode) else primary_metric_mode(metric)
        direction = "maximize" if mode == "max" else "minimize"
    return metric, direction


class _TrialFailed(Exception):
    """A trial that failed on its own (diverged, out of memory); the search goes on."""


def _suggest(trial, path: str, spec) -> Any:
    if spec.type == "float":
        return trial.suggest_float(path, spec.low, spec.high, log=spec.log, step=spec.step)
    if spec.type == "int":
        return trial.suggest_int(path, spec.low, spec.high, log=spec.log, step=spec.step)
    return trial.suggest_categorical(path, spec.choices)


def _prepare_output(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise RunDirError(
                f"search output '{out}' is not empty; use --overwrite or --output another folder"
            )
        shutil.rmtree(out)
    (out / "logs").mkdir(parents=True, exist_ok=True)


def run_search(
    cfg: RunConfig,
    trials: int,
    *,
    timeout: float | None = None,
    output: str | Path | None = None,
    overwrite: bool = False,
    verbose: bool = False,
) -> dict[str, Any]:
    """Run up to `trials` trials (no new one starts after `timeout` seconds) and write
    search.json, best_config.yaml and search.png under `output` (default: the config's
    output). Returns what search.json holds."""
    import optuna

    if trials < 1:
        raise ConfigError("--trials", "must be >= 1", trials, has_value=True)
    check_space(cfg)
    metric, direction = resolve_metric(cfg)
    s = cfg.search
    out = Path(output or cfg.output)
    _prepare_output(out, overwrite)
    startup = s.startup_trials if s.startup_trials is not None else min(10, max(1, trials // 3))
    seed = cfg.train.seed if s.seed is None else s.seed
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler = (
        optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
        if s.sampler == "tpe"
        else optuna.samplers.RandomSampler(seed=seed)
    )
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=0)
        if s.pruner == "median"
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(direction=direction, sampler=sampler, pruner=pruner)
    base = _raw(cfg)
    base["search"] = None
    base = set_path(base, "eval.baselines", [])  # trials compare with each other, not baselines
    if cfg.data is not None and cfg.data.prepare is not None and cfg.data.prepare.output is None:
        base = set_path(base, "data.prepare.output", str(out / "prepared"))  # prepared once
    summary: dict[str, Any] = {
        "metric": metric,
        "direction": direction,
        "sampler": s.sampler,
        "pruner": s.pruner,
        "startup_trials": startup,
        "seed": seed,
        "trials_requested": trials,
        "timeout": timeout,
        "space": {k: v.model_dump() for k, v in s.space.items()},
        "output": str(out),
    }
    t_search = time.perf_counter()

    def objective(trial) -> float:
        values = {path: _suggest(trial, path, spec) for path, spec in s.space.items()}
        run_dir = out / f"trial-{trial.number:03d}"
        trial.set_user_attr("output", str(run_dir))
        raw = base
        for path, value in values.items():
            raw = set_path(raw, path, value)
        raw["output"] = str(run_dir)
        t0 = time.perf_counter()
        try:
            with _captured(out / "logs" / f"trial-{trial.number:03d}.log", verbose):
                value = _run_trial(validate_config(raw), trial, metric)
        except optuna.TrialPruned:
            trial.set_user_attr("seconds", round(time.perf_counter() - t0, 2))
            _clean_pruned(run_dir)
            raise
        except TunelabError as exc:
            trial.set_user_attr("seconds", round(time.perf_counter() - t0, 2))
            if type(exc) is not TunelabError:  # config/data/run-dir errors hit every trial
                raise
            trial.set_user_attr("error", str(exc))
            raise _TrialFailed(str(exc)) from None
        except RuntimeError as exc:  # e.g. out of memory with this trial's batch size
            trial.set_user_attr("seconds", round(time.perf_counter() - t0, 2))
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            raise _TrialFailed(str(exc)) from None
        trial.set_user_attr("seconds", round(time.perf_counter() - t0, 2))
        return value

    def after_trial(study, frozen) -> None:
        record = trial_record(frozen)
        if Path(record["output"]).is_dir():
            atomic_write_json(Path(record["output"]) / "trial.json", record)
        summary["trials"] = [trial_record(t) for t in study.get_trials(deepcopy=False)]
        write_best(summary, study, out, cfg.eval.baselines)
        atomic_write_json(out / "search.json", summary)
        print(progress_line(record, trials, summary, metric), flush=True)

    try:
        study.optimize(
            objective,
            n_trials=trials,
            timeout=timeout,
            catch=(_TrialFailed,),
            callbacks=[after_trial],
            gc_after_trial=True,
        )
    finally:
        summary["trials"] = [trial_record(t) for t in study.get_trials(deepcopy=False)]
        summary["seconds"] = round(time.perf_counter() - t_search, 2)
        write_best(summary, study, out, cfg.eval.baselines)
        atomic_write_json(out / "search.json", summary)
        if summary["trials"]:
            plot_search(summary, out / "search.png")
    return summary


def _run_trial(tcfg: RunConfig, trial, metric: str) -> float:
    """One trial's run; its validation scores go to the pruner after every evaluation."""
    import optuna

    if tcfg.train.folds:  # cross-validated trial: the mean over folds, nothing to prune on
        from tunelab.runs.kfold import run_kfold

        summary = run_kfold(tcfg)
        return _metric_of(summary["validation"]["mean"], metric)
    steps: dict[str, int] = {}

    def on_eval(step: int, scores: dict) -> None:
        value = _metric_of(scores, metric)
        index = len(steps) + 1  # by evaluation index: comparable across batch sizes
        steps[str(index)] = step
        trial.set_user_attr("eval_steps", steps)
        trial.report(value, index)
        if trial.should_prune():
            raise optuna.TrialPruned(f"evaluation {index}: {metric}={value:.4f}")

    results = run_training(tcfg, on_eval=on_eval)
    return _metric_of(results["validation"], metric)


def _metric_of(scores: dict, metric: str) -> float:
    value = scores.get(metric)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        have = sorted(k for k, v in scores.items() if isinstance(v, (int, float)))
        raise ConfigError("search.metric", f"'{metric}' is not a validation metric; have {have}")
    return float(value)


@contextlib.contextmanager
def _captured(log: Path, verbose: bool):
    """A trial's own output (defaults, progress bar, warnings) goes to its log file."""
    if verbose:
        yield
        return
    with open(log, "w", encoding="utf-8") as fh:
        with contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
            yield


def _clean_pruned(run_dir: Path) -> None:
    """A pruned run never resumes: drop its checkpoints, keep config.yaml, metrics.jsonl,
    and checkpoints/config.json (so the folder still says which run it was)."""
    ckpts = run_dir / "checkpoints"
    if ckpts.is_dir():
        for child in ckpts.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
