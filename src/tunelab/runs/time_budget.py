"""`tunelab train CONFIG --time-budget 10m`: the best run that fits in a wall-clock budget.

Built on runs/search.py (`tunelab tune`): the same Optuna study, trial folders
`OUTPUT/trial-NNN/`, median pruning through run_training's `on_eval`, search.json,
best_config.yaml and search.png. What this module adds:

- a default space when the config has no `search:` section (`default_space`): the method
  (the config's, plus lora and full for classification and token classification), the
  learning rate as a log-uniform *scale* (1/3x .. 3x) of the method's own centre (the
  config's lr for its own method, else the default in training/defaults.py), so one
  dimension covers lora's 3.3e-4..3e-3 and full's 1.7e-5..1.5e-4; and the epochs (a third of the
  config's or the default count .. all of it). The first trial is the config as written,
  so the result is never worse on validation than a plain `tunelab train` that finished.
  A config with a `search:` section is searched over its own space instead.
- the deadline. Optuna's timeout is the budget less a margin for the final report, so no
  trial starts after it; a trial that the pace of earlier trials says would end past it is
  not started; and at every evaluation a running trial whose projected end (remaining steps
  at the pace measured so far) falls past the deadline is stopped and recorded as pruned.
  The loop offers no hook between evaluations, so a trial is stopped at its next
  evaluation at the latest (`train.eval_steps` makes evaluations, and so stops, more often).
- the output. The best complete trial is THE run: its model/, results.json, config.yaml,
  metrics and report are hard-linked (copied across file systems) into OUTPUT/, with
  results.json's baselines from the first trial that finished (only trials run before one
  has finished compute the baselines; the others compare with each other) and a `search`
  entry pointing to search.json.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from tunelab.errors import ConfigError, RunDirError, TunelabError

METHOD, LR_SCALE, EPOCHS = "method.name", "train.lr_scale", "train.epochs"
LR_SCALE_RANGE = (1 / 3, 3.0)  # around the method's centre: lora 3.3e-4..3e-3, full 1.7e-5..1.5e-4
BOTH_METHODS_TASKS = ("classification", "token-classification")  # encoders: lora vs full
STARTUP_TRIALS = 3  # random trials before TPE models the space
PRUNER_STARTUP = 2  # complete trials before the median pruner acts
SKIPS_BEFORE_STOP = 3  # trials in a row that would not fit: stop the search

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(?:\d+(?:\.\d*)?[hms])+|\d+(?:\.\d*)?")


def parse_duration(value: str | float | int, where: str = "--time-budget") -> float:
    """Seconds of `600`, `90s`, `10m`, `1h`, `1h30m` (or a number); ConfigError naming `where`."""
    if isinstance(value, bool):
        raise ConfigError(where, "not a duration", value, has_value=True)
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        if not _DURATION.fullmatch(text):
            raise ConfigError(
                where,
                "not a duration; give seconds or a number with s, m or h (600, 90s, 10m, 1h)",
                value,
                has_value=True,
            )
        parts = re.findall(r"(\d+(?:\.\d*)?)([hms]?)", text)
        seconds = sum(float(n) * _UNITS[u or "s"] for n, u in parts)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(where, "must be > 0 seconds", value, has_value=True)
    return seconds


def lr_centres(cfg, methods: list[str]) -> dict[str, float]:
    """The learning rate at scale 1 per method: the config's own for its method, else the
    method's default (training/defaults.py)."""
    from tunelab.training.defaults import LR_BY_METHOD

    out = {m: LR_BY_METHOD[m] for m in methods}
    if cfg.train.lr is not None:
        out[cfg.method.name] = cfg.train.lr
    return out


def default_space(cfg, epochs: float | None) -> dict[str, dict]:
    """The space searched when the config has no `search:` section (see the module doc).
    `epochs`: the config's epochs, or the count a plain run would choose; None (max_steps
    runs) leaves the epochs out."""
    methods = [cfg.method.name]
    if cfg.task in BOTH_METHODS_TASKS:
        methods += [m for m in ("lora", "full") if m not in methods]
    space = {
        METHOD: {"type": "categorical", "choices": methods},
        LR_SCALE: {
            "type": "float",
            "low": LR_SCALE_RANGE[0],
            "high": LR_SCALE_RANGE[1],
            "log": True,
        },
    }
    if epochs is not None and cfg.train.max_steps is None:
        high = max(1, round(epochs))
        space[EPOCHS] = {"type": "int", "low": max(1, round(high / 3)), "high": high}
    return space


def trial_raw(base: dict, cfg, values: dict[str, Any], centres: dict[str, float] | None) -> dict:
    """The raw config of one trial: `values` at their dotted paths. With `centres` (the
    default space), a method other than the config's gets a fresh `method:` section (its
    own defaults: lora's r does not apply to full) and the lr scale becomes `train.lr`."""
    from tunelab.runs.search import set_path

    raw = base
    method = values.get(METHOD, cfg.method.name)
    if centres is not None and method != cfg.method.name:
        raw = {**raw, "method": {"name": method}}
    for path, value in values.items():
        if centres is not None and path in (METHOD, LR_SCALE):
            continue
        raw = set_path(raw, path, value)
    if centres is not None and LR_SCALE in values:
        raw = set_path(raw, "train.lr", float(f"{centres[method] * values[LR_SCALE]:.3g}"))
    return raw


class _Pace:
    """How long trials take, from the trials so far: per method the seconds per optimizer
    step between evaluations (evaluations included), the set-up before the first step and
    the finishing after the last evaluation (scoring, saving, report), and whole trials."""

    def __init__(self) -> None:
        self.rate: dict[str, float] = {}
        self.setup: list[float] = []
        self.finish: list[float] = []
        self.whole: list[tuple[int, float]] = []  # (steps, seconds) of complete trials

    def observe(self, method: str, points: list[tuple[int, float]]) -> float | None:
        """Seconds per step from a trial's (step, seconds since it started) at its
        evaluations, once it has two; before that the method's rate from earlier trials."""
        if len(points) >= 2 and points[-1][0] > points[0][0]:
            (s1, t1), (sk, tk) = points[0], points[-1]
            self.rate[method] = (tk - t1) / (sk - s1)
            if len(points) == 2:  # once a trial: its set-up, stopped or not
                self.setup.append(max(0.0, t1 - s1 * self.rate[method]))
        return self.rate.get(method)

    def after_last(self, points: list[tuple[int, float]], rate: float) -> float:
        """Seconds a trial takes after its last evaluation: as measured, else about its own
        set-up (both load or write the model and score the splits)."""
        if self.finish:
            return min(self.finish)
        return max(0.0, points[0][1] - points[0][0] * rate)

    def done(self, method: str, points: list[tuple[int, float]], steps: int, seconds: float):
        if not points:
            return
        self.finish.append(max(0.0, seconds - points[-1][1]))
        self.whole.append((steps, seconds))

    def predict(self, method: str, steps: int | None) -> float | None:
        """Seconds a trial of `steps` steps would take; None before anything was measured.
        The fastest set-up and finish seen: the first trial's include the imports."""
        if steps is None:
            return None
        rate = self.rate.get(method, max(self.rate.values()) if self.rate else None)
        if rate is not None and self.setup:
            after = min(self.finish) if self.finish else min(self.setup)
            return min(self.setup) + rate * steps + after
        if self.whole:  # trials with one evaluation each: in proportion to the shortest
            s, t = min(self.whole, key=lambda w: w[1])
            return t * steps / max(1, s)
        return None


def _total_steps(tcfg, n_train: int | None) -> int | None:
    """The optimizer steps of a trial, as the loop counts them (None: rows unknown)."""
    t = tcfg.train
    if t.max_steps:
        return t.max_steps
    if n_train is None or not t.epochs:
        return None
    per_epoch = math.ceil(math.ceil(n_train / t.batch_size) / t.grad_accum)
    return max(1, math.ceil(t.epochs * per_epoch))


def _training_rows(cfg) -> int | None:
    """Rows the trials train on (validation split off when the config asks), or None when
    they cannot be read here (the first trial then reports the data error)."""
    from tunelab.runs.settings import prepared
    from tunelab.tasks import get_task

    try:
        return len(get_task(cfg.task).load_data(prepared(cfg)).splits["train"])
    except Exception:
        return None


def _link_tree(src: Path, dst: Path) -> None:
    """The run files of `src` into `dst` (not its checkpoints): hard links, copies where a
    link cannot be made."""

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    ignore = shutil.ignore_patterns("checkpoints", "trial.json")
    shutil.copytree(src, dst, ignore=ignore, copy_function=link, dirs_exist_ok=True)


def run_time_budget(
    cfg,
    budget: str | float,
    *,
    overwrite: bool = False,
    preflight: bool = True,
    verbose: bool = False,
) -> dict[str, Any]:
    """Search within `budget` (seconds, or `10m`-style) and make the best trial the run in
    cfg.output (see the module doc). Returns the results.json written there."""
    import optuna

    from tunelab.atomic import atomic_write_json
    from tunelab.config.load import validate_config
    from tunelab.config.search import SearchConfig
    from tunelab.runs import search as S
    from tunelab.runs.search_report import plot_search, write_best
    from tunelab.runs.train import run_training

    seconds = parse_duration(budget)
    t_start = time.perf_counter()
    if cfg.train.folds:
        raise ConfigError("--time-budget", "cannot be combined with train.folds (k-fold runs)")
    out = Path(cfg.output)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise RunDirError(f"output '{out}' is not empty; use --overwrite or another output:")
    user_space = cfg.search is not None
    if user_space:
        S.check_space(cfg)
    if preflight:
        from tunelab.runs.plan import run_preflight

        run_preflight(cfg)  # the config as written: refuse one that will not fit
    S._prepare_output(out, overwrite=True)
    base = S._raw(cfg)
    base["search"] = None
    if cfg.data is not None and cfg.data.prepare is not None and cfg.data.prepare.output is None:
        base = S.set_path(base, "data.prepare.output", str(out / "prepared"))  # prepared once
    n_train = _training_rows(validate_config(base))
    centres = None
    if user_space:
        s = cfg.search
    else:
        from tunelab.training.defaults import choose_epochs

        epochs = cfg.train.epochs
        if epochs is None and n_train is not None:
            epochs, _ = choose_epochs(n_train, cfg.train.batch_size, cfg.train.grad_accum)
        space = default_space(cfg, epochs if epochs is not None else 3.0)
        space[METHOD]["choices"] = [
            m for m in space[METHOD]["choices"] if _valid(base, cfg, {METHOD: m}, validate_config)
        ]
        centres = lr_centres(cfg, space[METHOD]["choices"])
        s = SearchConfig(sampler="tpe", startup_trials=STARTUP_TRIALS, space=space)
        cfg = cfg.model_copy(update={"search": s})
    metric, direction = S.resolve_metric(cfg)
    seed = cfg.train.seed if s.seed is None else s.seed
    startup = STARTUP_TRIALS if s.startup_trials is None else s.startup_trials
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler = (
        optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
        if s.sampler == "tpe"
        else optuna.samplers.RandomSampler(seed=seed)
    )
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=min(startup, PRUNER_STARTUP))
        if s.pruner == "median"
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(direction=direction, sampler=sampler, pruner=pruner)
    if centres is not None:  # trial 0: the config as written
        first = {METHOD: cfg.method.name, LR_SCALE: 1.0}
        if EPOCHS in s.space:
            first[EPOCHS] = s.space[EPOCHS].high
        study.enqueue_trial(first)
    margin = min(30.0, max(2.0, 0.03 * seconds))  # the final copy and report
    deadline = t_start + seconds - margin
    pace = _Pace()
    state = {"skips": 0, "baselines_from": None}
    summary: dict[str, Any] = {
        "metric": metric,
        "direction": direction,
        "sampler": s.sampler,
        "pruner": s.pruner,
        "startup_trials": startup,
        "seed": seed,
        "time_budget": seconds,
        "timeout": round(deadline - t_start, 2),
        "space": _shown_space(s, centres),
        "lr_by_method": None
        if centres is None
        else {m: [c * LR_SCALE_RANGE[0], c * LR_SCALE_RANGE[1]] for m, c in centres.items()},
        "default_space": centres is not None,
        "output": str(out),
    }
    print(_start_line(summary, seconds, out), flush=True)

    def objective(trial) -> float:
        values = {path: S._suggest(trial, path, spec) for path, spec in s.space.items()}
        run_dir = out / f"trial-{trial.number:03d}"
        trial.set_user_attr("output", str(run_dir))
        raw = trial_raw(base, cfg, values, centres)
        raw["output"] = str(run_dir)
        if state["baselines_from"] is not None:  # baselines once: the first trial that finishes
            raw = S.set_path(raw, "eval.baselines", [])
        tcfg = validate_config(raw)
        trial.set_user_attr("lr", tcfg.train.lr)
        method = tcfg.method.name
        steps = _total_steps(tcfg, n_train)
        need, left = pace.predict(method, steps), deadline - time.perf_counter()
        if need is not None and need > left:
            trial.set_user_attr(
                "stopped", f"not started: needs about {need:.0f}s, {left:.0f}s left"
            )
            trial.set_user_attr("seconds", 0.0)
            state["skips"] += 1
            if state["skips"] >= SKIPS_BEFORE_STOP:
                trial.study.stop()
            raise optuna.TrialPruned()
        state["skips"] = 0
        t0 = time.perf_counter()
        points: list[tuple[int, float]] = []

        def on_eval(step: int, scores: dict) -> None:
            now = time.perf_counter()
            points.append((step, now - t0))
            value = S._metric_of(scores, metric)
            index = len(points)
            trial.set_user_attr("eval_steps", {str(i + 1): p[0] for i, p in enumerate(points)})
            trial.report(value, index)
            rate = pace.observe(method, points)
            if steps is not None and rate is not None and step < steps:
                end = now + (steps - step) * rate + pace.after_last(points, rate)
                if end > deadline:
                    why = f"stopped at evaluation {index}: would end at {end - t_start:.0f}s"
                    trial.set_user_attr("stopped", f"{why} of {seconds:.0f}s")
                    raise optuna.TrialPruned(why)
            elif now > deadline and (steps is None or step < steps):
                why = f"stopped at evaluation {index}: past the deadline"
                trial.set_user_attr("stopped", f"{why} ({now - t_start:.0f}s of {seconds:.0f}s)")
                raise optuna.TrialPruned(why)
            if trial.should_prune():
                raise optuna.TrialPruned(f"evaluation {index}: {metric}={value:.4f}")

        def took() -> None:
            trial.set_user_attr("seconds", round(time.perf_counter() - t0, 2))

        try:
            with S._captured(out / "logs" / f"trial-{trial.number:03d}.log", verbose):
                results = run_training(tcfg, on_eval=on_eval)
        except optuna.TrialPruned:
            took()
            S._clean_pruned(run_dir)
            raise
        except TunelabError as exc:
            took()
            if type(exc) is not TunelabError:  # config/data/run-dir errors hit every trial
                raise
            trial.set_user_attr("error", str(exc))
            raise S._TrialFailed(str(exc)) from None
        except RuntimeError as exc:  # e.g. out of memory with this trial's settings
            took()
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            raise S._TrialFailed(str(exc)) from None
        took()
        pace.done(method, points, results["run"]["steps"], time.perf_counter() - t0)
        if state["baselines_from"] is None:
            state["baselines_from"] = run_dir
        return S._metric_of(results["validation"], metric)

    def records() -> list[dict]:
        return [_record(t, centres) for t in study.get_trials(deepcopy=False)]

    def write_summary() -> None:
        summary["trials"] = records()
        summary["seconds"] = round(time.perf_counter() - t_start, 2)
        write_best(summary, study, out, cfg.eval.baselines)
        if summary["best"]:
            best = next(r for r in summary["trials"] if r["trial"] == summary["best"]["trial"])
            summary["best"]["params"] = best["params"]
        atomic_write_json(out / "search.json", summary)

    def after_trial(study, frozen) -> None:
        record = _record(frozen, centres)
        if Path(record["output"]).is_dir():
            atomic_write_json(Path(record["output"]) / "trial.json", record)
        write_summary()
        print(_progress(record, summary, time.perf_counter() - t_start, seconds), flush=True)

    try:
        study.optimize(
            objective,
            timeout=max(0.0, deadline - time.perf_counter()),
            catch=(S._TrialFailed,),
            callbacks=[after_trial],
            gc_after_trial=True,
        )
    finally:
        write_summary()
        if summary["trials"]:
            plot_search(summary, out / "search.png")
    return _make_run(cfg, summary, out, state["baselines_from"], t_start)


def _valid(base: dict, cfg, values: dict, validate) -> bool:
    try:
        validate(trial_raw(base, cfg, values, {cfg.method.name: 1.0}))
    except ConfigError:
        return False
    return True


def _shown_space(s, centres: dict | None) -> dict[str, dict]:
    """search.json's space: the default space shows `train.lr` over all methods (each
    trial's params hold the lr it ran with; lr_by_method gives each method's range)."""
    space = {k: v.model_dump() for k, v in s.space.items()}
    if centres is None:
        return space
    scale = space.pop(LR_SCALE)
    lows = [c * scale["low"] for c in centres.values()]
    highs = [c * scale["high"] for c in centres.values()]
    lr = {"type": "float", "low": min(lows), "high": max(highs), "log": True, "step": None}
    return {
        METHOD: space[METHOD],
        "train.lr": lr,
        **{k: v for k, v in space.items() if k != METHOD},
    }


def _record(frozen, centres: dict | None) -> dict[str, Any]:
    """search_report.trial_record, with the lr a trial ran with in place of its scale and
    why the deadline stopped it."""
    from tunelab.runs.search_report import trial_record

    record = trial_record(frozen)
    attrs = frozen.user_attrs
    if centres is not None and LR_SCALE in record["params"]:
        params = dict(record["params"])
        record["lr_scale"] = params.pop(LR_SCALE)
        method = params.pop(METHOD, None)
        record["params"] = {METHOD: method, "train.lr": attrs.get("lr"), **params}
    if "stopped" in attrs:
        record["stopped"] = attrs["stopped"]
    return record


def _start_line(summary: dict, seconds: float, out: Path) -> str:
    parts = []
    for path, spec in summary["space"].items():
        name = path.rsplit(".", 1)[-1]
        if spec["type"] == "categorical":
            parts.append(f"{name} in {{{', '.join(map(str, spec['choices']))}}}")
        else:
            parts.append(f"{name} {spec['low']:.3g}..{spec['high']:.3g}")
    if summary["lr_by_method"]:
        by = ", ".join(f"{m} {lo:.2g}..{hi:.2g}" for m, (lo, hi) in summary["lr_by_method"].items())
        parts = [p if not p.startswith("lr ") else f"lr by method ({by})" for p in parts]
    return (
        f"time budget {seconds:.0f}s: searching {'; '.join(parts)} on validation "
        f"{summary['metric']} (trials in {out}/trial-NNN, their logs in {out}/logs)"
    )


def _progress(record: dict, summary: dict, elapsed: float, budget: float) -> str:
    from tunelab.runs.search_report import format_value

    params = " ".join(
        f"{k.rsplit('.', 1)[-1]}={format_value(v)}" for k, v in record["params"].items()
    )
    metric = summary["metric"]
    if record["state"] == "complete":
        result = f"{metric}={record['value']:.4f}"
    elif record.get("stopped"):
        result = f"pruned ({record['stopped']})"
    elif record["state"] == "pruned":
        last = record["intermediate"][-1] if record["intermediate"] else None
        result = f"pruned at evaluation {last['evaluation']}" if last else "pruned"
    else:
        result = f"{record['state']}: {record.get('error') or ''}".strip()
    best = summary.get("best")
    tail = f"  best: trial {best['trial']} {best['value']:.4f}" if best else ""
    return (
        f"trial {record['trial']}  [{elapsed:.0f}s/{budget:.0f}s]  {params}  -> {result}  "
        f"{record.get('seconds') or 0:.0f}s{tail}"
    )


def _make_run(cfg, summary: dict, out: Path, baselines_from: Path | None, t_start: float) -> dict:
    """OUTPUT/ becomes the best trial's run: its files, results.json with the baselines and
    a `search` entry, config.yaml with output OUTPUT, report.html drawn again."""
    import yaml

    from tunelab.atomic import atomic_write_text
    from tunelab.config.run_result import read_run_result, run_result, write_run_result
    from tunelab.evaluation.run_report.page import write_report
    from tunelab.training.loggers import read_metrics

    best = summary.get("best")
    if not best:
        done = summary.get("trials") or []
        stopped = [r.get("stopped") for r in done if r.get("stopped")]
        why = f"; trial 0 {stopped[0]}" if stopped else ""
        raise TunelabError(
            f"--time-budget {summary['time_budget']:.0f}s: no trial finished within the budget"
            f"{why}; give a longer budget or a shorter run (train.epochs, train.max_steps; "
            f"see {out / 'search.json'})"
        )
    trial_dir = Path(best["output"])
    _link_tree(trial_dir, out)
    result = read_run_result(trial_dir).to_dict()
    if baselines_from is not None and baselines_from != trial_dir:
        first = read_run_result(baselines_from).to_dict()
        result["baselines"] = {**first["baselines"], **result["baselines"]}
        if first["timing"].get("baseline_seconds"):
            result["timing"]["baseline_seconds"] = first["timing"]["baseline_seconds"]
    result["run"]["output"] = str(out)
    result["search"] = {
        "time_budget": summary["time_budget"],
        "seconds": round(time.perf_counter() - t_start, 2),
        "trials": len(summary["trials"]),
        "complete": sum(r["state"] == "complete" for r in summary["trials"]),
        "best_trial": best["trial"],
        "params": best["params"],
        "metric": summary["metric"],
        "value": best["value"],
        "file": str(out / "search.json"),
    }
    resolved = yaml.safe_load((trial_dir / "config.yaml").read_text(encoding="utf-8"))
    resolved["output"] = str(out)
    resolved.setdefault("eval", {})["baselines"] = list(cfg.eval.baselines)
    resolved.pop("search", None)
    atomic_write_text(out / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
    written = write_run_result(out, run_result(result))
    write_report(
        out,
        written,
        read_metrics(out),
        title=f"tunelab run: {cfg.model} / {written['run']['method']} / {cfg.task} "
        f"(best of {len(summary['trials'])} trials, time budget {summary['time_budget']:.0f}s)",
    )
    return written
