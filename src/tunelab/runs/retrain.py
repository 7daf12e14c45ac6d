"""`tunelab retrain NAME`: the champion fine-tuned on what feedback taught, with replay, and
promoted only when a paired comparison says it is better.

Steps, each recorded in the work folder's state.json when it finishes, so a retrain that is
killed continues where it stopped when run again (and a finished one just reports again):

1. **data**: the logged inputs of NAME that have a feedback label (the newest version each),
   through the prepare stage of `tunelab data` (PII replaced, exact and near duplicates
   dropped, a stratified split into train / validation / held-out, leakage between them
   removed), then minus every row whose text is in the champion's test set or a golden set.
2. **train**: the challenger: the champion's run config (plus --config overrides), starting
   from the champion's weights, with the continual procedure replaying the champion's own
   training data (`retrain.replay_ratio`) and scoring the forgetting on its test set.
3. **eval**: champion against challenger on the champion's test set (the forgetting check),
   on the held-out part of the new data and on each golden set: paired bootstrap intervals of
   the difference and McNemar's test (`tunelab eval`'s comparison; report.html per set).
4. **register**: the challenger becomes the next version of NAME, alias `challenger`.
5. **decide**: the gate. The challenger must be better on the new data (the interval of
   challenger - champion above 0) and not worse than `retrain.margin` on the old test set
   and the golden sets (the interval's lower end at or above -margin). Only then, or with
   --force, is it promoted to champion. The champion alias moves in that last step only.

The work folder is keyed by the champion's version and a fingerprint of the feedback rows and
settings: new feedback or a new champion starts a new retrain.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from tunelab.errors import ConfigError, TunelabError

PROMOTED, REFUSED, NOTHING = "promoted", "refused", "nothing_to_do"
USED_FEEDBACK = "retrain_feedback.json"  # in a challenger's run folder: what it learned from
SPLITS = ("train", "validation", "test")


class RetrainError(TunelabError):
    """A retrain that cannot start or go on; names the model, file or setting at fault."""


# -- settings ---------------------------------------------------------------------------


def read_overrides(path: str | Path | None) -> tuple[dict, Any]:
    """(run-config overrides, RetrainConfig) of a --config file; ({} and defaults) without."""
    import yaml

    from tunelab.config.retrain import RetrainConfig

    raw: dict = {}
    if path is not None:
        p = Path(path)
        try:
            raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError("--config", f"{p}: cannot read it ({exc})") from None
        if not isinstance(raw, dict):
            raise ConfigError("--config", f"{p}: the top level must be a mapping of keys")
    raw = dict(raw)
    section = raw.pop("retrain", None) or {}
    from pydantic import ValidationError

    try:
        settings = RetrainConfig.model_validate(section)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = "retrain." + ".".join(str(x) for x in err["loc"])
        raise ConfigError(where, err["msg"]) from None
    return raw, settings


def _found(path: str | None, run_dir: Path) -> Path | None:
    """A data file the champion's config names: as written, else relative to its run."""
    if not path:
        return None
    for candidate in (Path(path), run_dir / path):
        if candidate.is_file():
            return candidate.resolve()
    return None


# -- 1. data ----------------------------------------------------------------------------


def labelled_rows(url: str, logged_name: str, since: float | None, until: float | None):
    """Logged rows of `logged_name` (status 200) whose newest feedback has a label."""
    from tunelab.store.db import open_db
    from tunelab.store.feedback import attach_feedback
    from tunelab.store.predictions import read_predictions

    rows = read_predictions(url, model=logged_name, since=since, until=until)
    engine = open_db(url)
    try:
        attach_feedback(engine, rows, model=logged_name)
    finally:
        engine.dispose()
    return [r for r in rows if r.get("status") == 200 and r.get("true_label") is not None]


def _texts_of(path: Path, column: str) -> list[str]:
    from tunelab.data.readers import read_table

    df = read_table(path)
    return df[column].astype(str).tolist() if column in df.columns else []


def build_data(rows: list[dict], champion_cfg, run_dir: Path, work: Path, settings) -> dict:
    """The new train / validation / held-out files in work/data (see the module doc)."""
    from tunelab.config.data import DataConfig
    from tunelab.data.dedup import dedup_key
    from tunelab.data.prepare import prepare
    from tunelab.data.readers import read_table
    from tunelab.data.splits import leaked

    data = champion_cfg.data
    text_col, pair_col, label_col = data.text, data.text_pair, data.label
    missing = [r["id"] for r in rows if r.get("text") is None]
    if missing:
        raise RetrainError(
            f"{len(missing)} feedback-labelled inputs were logged without their text (e.g. "
            f"{missing[0]}): serve with --log-text scrubbed (the default) or raw to retrain on them"
        )
    work_data = work / "data"
    work_data.mkdir(parents=True, exist_ok=True)
    raw = work_data / "feedback.jsonl"
    with raw.open("w", encoding="utf-8") as f:
        for r in rows:
            record = {text_col: r["text"], label_col: r["true_label"], "request_id": r["id"]}
            if pair_col:
                record[pair_col] = r.get("pair") or ""
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    ratios = {"train": 1 - settings.heldout - settings.validation, "test": settings.heldout}
    if settings.validation > 0:
        ratios["validation"] = settings.validation
    cfg = DataConfig(
        train=str(raw),
        text=text_col,
        text_pair=pair_col,
        label=label_col,
        label_names=data.label_names,
        prepare={
            "pii": {"action": "replace"},
            "dedup": {"exact": True, "near": True},
            "split": {"ratios": ratios, "stratify": True, "remove_leakage": True},
            "seed": settings.seed,
            "output": str(work_data / "prepared"),
            "format": "jsonl",
        },
    )
    prepared = prepare(cfg, str(work / "challenger"), force=True)
    # leakage into the sets that judge the challenger: the old test set and the golden sets
    judged = [p for p in (_found(data.test, run_dir), *map(Path, settings.golden)) if p]
    keys = {dedup_key(t) for p in judged for t in _texts_of(p, text_col)}
    files, counts, removed = {}, {}, 0
    for split, path in prepared.files.items():
        df = read_table(path)
        bad = set(leaked(keys, [dedup_key(str(t)) for t in df[text_col].tolist()]))
        removed += len(bad)
        keep = df[[i not in bad for i in range(len(df))]]
        out = work_data / f"{split}.jsonl"
        keep.to_json(out, orient="records", lines=True, force_ascii=False)
        files[split], counts[split] = str(out), len(keep)
    if counts.get("train", 0) == 0 or counts.get("test", 0) == 0:
        raise RetrainError(
            f"after preparing, {counts} rows are left: too few feedback-labelled rows to train "
            "and judge a challenger (see the prepare report in " + str(prepared.out_dir) + ")"
        )
    return {
        "files": files,
        "rows": counts,
        "labelled": len(rows),
        "feedback_keys": [_feedback_key(r) for r in rows],
        "leaked_into_test_or_golden": removed,
        "prepare_report": str(prepared.out_dir / "report.html"),
    }


# -- 2. train ---------------------------------------------------------------------------


def challenger_config(champion_cfg, run_dir: Path, files: dict, overrides: dict, settings, out):
    """The challenger's run config (a RunConfig): the champion's, from its weights, on the new
    data, with replay of its training data and the forgetting check on its test set."""
    from tunelab.config.load import merge_dicts, validate_config

    base = champion_cfg.model_dump(mode="json")
    train_file = _found(champion_cfg.data.train, run_dir)
    if train_file is None:
        raise RetrainError(
            f"{run_dir}: the champion's training file {champion_cfg.data.train} is gone; "
            "replay needs it"
        )
    test_file = _found(champion_cfg.data.test, run_dir)
    procedure = {"name": "continual", "replay": str(train_file)}
    procedure["replay_ratio"] = settings.replay_ratio
    if test_file is not None:
        procedure["old_validation"] = str(test_file)
    data = {
        "train": files["train"],
        "validation": files.get("validation"),
        "test": files["test"],
        "prepare": None,
    }
    cfg = merge_dicts(base, {"model": str(run_dir), "data": data, "procedure": procedure})
    cfg = merge_dicts(cfg, overrides)
    cfg["output"] = str(out)
    return validate_config(cfg)


def train_challenger(cfg, out: Path) -> dict:
    """Train (or resume, when a killed run left checkpoints) the challenger at `out`."""
    from tunelab.runs.train import run_training

    done = out / "results.json"
    if done.is_file() and (out / "model" / "tunelab.json").is_file():
        return json.loads(done.read_text())
    resume = (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir())
    return run_training(cfg, overwrite=not resume, resume=resume)


# -- 3. eval ----------------------------------------------------------------------------


def compare(champion: Path, challenger: Path, path: Path, out: Path, settings) -> dict:
    """Champion vs challenger on one labelled file: the gate metric's values, difference,
    interval and p-value, McNemar's test, and where the full report is."""
    from tunelab.evaluation.report.build import evaluate_report

    report = evaluate_report(
        champion,
        path,
        compare=[str(challenger)],
        names=["champion", "challenger"],
        output=out,
        bootstrap=settings.bootstrap,
        seed=settings.seed,
    )
    tests = report["comparison"][0]["tests"]
    metric = settings.metric or ("accuracy" if "accuracy" in tests else report["headline"][0])
    if metric not in tests:
        raise RetrainError(
            f"retrain.metric: '{metric}' is not a metric of this task "
            f"({', '.join(k for k in tests if k != 'mcnemar')})"
        )
    t = tests[metric]
    return {
        "file": str(path),
        "rows": report["rows"],
        "metric": metric,
        "champion": t["a"],
        "challenger": t["b"],
        "diff": t["diff"],
        "low": t["low"],
        "high": t["high"],
        "p_value": t["p_value"],
        "mcnemar": tests.get("mcnemar"),
        "report": str(out / "report.html"),
    }


# -- 5. decide --------------------------------------------------------------------------


def gate(evals: dict, margin: float) -> dict:
    """{"passed", "reasons": [...], "checks": [...]}: better on new, not worse on old/golden."""
    checks, reasons = [], []
    new = evals["new"]
    better = new["low"] is not None and new["low"] > 0
    checks.append(
        {"set": "new", "rule": f"{new['metric']} difference interval above 0", "passed": better}
    )
    if not better:
        reasons.append(
            f"not better on the new data: {new['metric']} {new['champion']:.4f} -> "
            f"{new['challenger']:.4f}, difference interval [{new['low']:.4f}, {new['high']:.4f}] "
            "does not lie above 0"
        )
    for key, ev in evals.items():
        if key == "new":
            continue
        ok = ev["low"] is not None and ev["low"] >= -margin
        checks.append({"set": key, "rule": f"interval's lower end >= -{margin:g}", "passed": ok})
        if not ok:
            why = (
                f"worse on {key} beyond the margin {margin:g}: {ev['metric']} "
                f"{ev['champion']:.4f} -> {ev['challenger']:.4f}, interval "
                f"[{ev['low']:.4f}, {ev['high']:.4f}]"
            )
            if ev["low"] is not None and (ev["high"] - ev["low"]) / 2 > margin:
                why += (
                    f" (that interval is +-{(ev['high'] - ev['low']) / 2:.4f} wide on "
                    f"{ev['rows']} rows: a margin below its half-width fails even an unchanged "
                    "model; raise retrain.margin or use a larger test set)"
                )
            reasons.append(why)
    return {"passed": not reasons, "reasons": reasons, "checks": checks}


# -- the whole retrain ------------------------------------------------------------------


def used_feedback(run_dir: Path) -> set[str]:
    """Feedback (`input id:answer version`) the model at `run_dir` was already trained on: the
    USED_FEEDBACK file a retrain writes into its challenger (the feedback of every retrain in
    its lineage). A retrain of that model must not train on it again, nor be judged on it."""
    path = run_dir / USED_FEEDBACK
    try:
        return set(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return set()


def _feedback_key(row: dict) -> str:
    return f"{row['id']}:{row['feedback']['version']}"


def _work_key(champion: dict, rows: list[dict], overrides: dict, settings) -> str:
    h = hashlib.sha256()
    h.update(f"{champion['name']}@{champion['version']}\0".encode())
    for r in rows:
        h.update(f"{_feedback_key(r)}:{r['true_label']}\0".encode())
    h.update(json.dumps([overrides, settings.model_dump()], sort_keys=True, default=str).encode())
    return h.hexdigest()[:12]


class State:
    """state.json of a work folder: what each finished step produced."""

    def __init__(self, work: Path):
        self.path = work / "state.json"
        self.data: dict = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def done(self, step: str) -> dict | None:
        return self.data.get(step)

    def finish(self, step: str, value: dict, quiet: bool = False) -> dict:
        from tunelab.atomic import atomic_write_json

        self.data[step] = value
        atomic_write_json(self.path, self.data)
        if not quiet:
            print(f"retrain: {step} done", flush=True)
        return value


def retrain(
    name: str,
    *,
    db: str | None = None,
    since: float | None = None,
    until: float | None = None,
    config: str | Path | None = None,
    logged_name: str | None = None,
    work_root: str | Path = "retrains",
    force: bool = False,
) -> dict:
    """Run (or continue) the retrain of NAME; returns the report (also work/retrain.json):
    {"decision": promoted | refused | nothing_to_do, "reasons", "champion", "challenger",
    "data", "evals", "gate", "work"}."""
    from tunelab.config.legacy import read_run_config
    from tunelab.store.db import database_url, open_db
    from tunelab.store.registry import add_version, get_version, promote

    overrides, settings = read_overrides(config)
    url = database_url(db)
    engine = open_db(url)
    try:
        champion = get_version(engine, name, "champion")
    finally:
        engine.dispose()
    run_dir = Path(champion["path"])
    if not (run_dir / "config.yaml").is_file():
        raise RetrainError(
            f"{name}@{champion['version']}: {run_dir} is not a run folder (no config.yaml); "
            "retraining starts from a run's config and data"
        )
    champion_cfg = read_run_config(run_dir / "config.yaml")
    rows = labelled_rows(url, logged_name or name, since, until)
    used = used_feedback(run_dir)
    fresh = [r for r in rows if _feedback_key(r) not in used]
    base = {
        "name": name,
        "champion": {"version": champion["version"], "path": str(run_dir)},
        "labelled": len(fresh),
        "already_used": len(rows) - len(fresh),
    }
    if len(fresh) < settings.min_rows:
        why = (
            f"{len(fresh)} feedback-labelled inputs of '{logged_name or name}' "
            f"(retrain.min_rows: {settings.min_rows}); nothing to retrain on"
        )
        if used:
            why += (
                f" ({len(rows) - len(fresh)} more trained champion v{champion['version']} already)"
            )
        return {**base, "decision": NOTHING, "reasons": [why]}
    rows = fresh
    work = (
        Path(work_root)
        / name
        / f"v{champion['version']}-{_work_key(champion, rows, overrides, settings)}"
    )
    work.mkdir(parents=True, exist_ok=True)
    state = State(work)
    timings = state.done("timings") or {}

    def step(key: str, fn):
        got = state.done(key)
        if got is not None:
            print(f"retrain: {key}: done before, reusing {work}", flush=True)
            return got
        print(f"retrain: {key} ...", flush=True)
        t0 = time.perf_counter()
        value = state.finish(key, fn())
        timings[key] = round(time.perf_counter() - t0, 2)
        state.finish("timings", timings, quiet=True)
        return value

    challenger_dir = work / "challenger"
    # the overrides are checked now, on the champion's own files, not after preparing the data
    own = {s: _found(getattr(champion_cfg.data, s), run_dir) for s in SPLITS}
    own = {s: None if f is None else str(f) for s, f in own.items()}
    challenger_config(champion_cfg, run_dir, own, overrides, settings, challenger_dir)
    data = step("data", lambda: build_data(rows, champion_cfg, run_dir, work, settings))

    def do_train():
        from tunelab.atomic import atomic_write_json

        cfg = challenger_config(
            champion_cfg, run_dir, data["files"], overrides, settings, challenger_dir
        )
        results = train_challenger(cfg, challenger_dir)
        atomic_write_json(challenger_dir / USED_FEEDBACK, sorted(used | set(data["feedback_keys"])))
        return {"path": str(challenger_dir), "forgetting": results.get("forgetting")}

    step("train", do_train)

    def do_eval():
        sets = {"new": Path(data["files"]["test"])}
        old = _found(champion_cfg.data.test, run_dir)
        if old is not None:
            sets["old_test"] = old
        for i, g in enumerate(settings.golden):
            sets[f"golden_{i + 1}"] = Path(g)
        return {
            key: compare(run_dir, challenger_dir, path, work / f"eval-{key}", settings)
            for key, path in sets.items()
        }

    evals = step("eval", do_eval)

    def do_register():
        engine = open_db(url)
        try:
            v = add_version(
                engine, name, challenger_dir, alias="challenger", parent=champion["version"]
            )
        finally:
            engine.dispose()
        return {"version": v["version"], "path": v["path"]}

    registered = step("register", do_register)
    verdict = gate(evals, settings.margin)

    def do_decide():
        promote_it = verdict["passed"] or force
        if promote_it:
            engine = open_db(url)
            try:
                promote(engine, name, registered["version"], "champion")
            finally:
                engine.dispose()
        return {
            "decision": PROMOTED if promote_it else REFUSED,
            "forced": force and not verdict["passed"],
        }

    decided = step("decide", do_decide)
    report = {
        **base,
        "decision": decided["decision"],
        "forced": decided["forced"],
        "reasons": verdict["reasons"],
        "gate": verdict,
        "challenger": registered,
        "data": data,
        "evals": evals,
        "timings_s": state.done("timings"),
        "work": str(work),
    }
    from tunelab.atomic import atomic_write_json

    atomic_write_json(work / "retrain.json", report)
    (work / "retrain.md").write_text(markdown(report), encoding="utf-8")
    return report


def markdown(report: dict) -> str:
    """The retrain's report as Markdown: the decision, why, and each comparison."""
    lines = [
        f"# Retrain of {report['name']}: {report['decision']}",
        "",
        f"Champion: version {report['champion']['version']} ({report['champion']['path']}); "
        f"challenger: version {report['challenger']['version']} ({report['challenger']['path']}).",
        f"Feedback-labelled inputs: {report['labelled']}; after preparing: {report['data']['rows']}.",
        "",
    ]
    if report["reasons"]:
        lines += [
            "Why not promoted:" if report["decision"] != PROMOTED else "Gate failures (forced):"
        ]
        lines += [f"- {r}" for r in report["reasons"]] + [""]
    lines += [
        "| set | rows | metric | champion | challenger | difference [95% interval] | McNemar p | report |",
        "| --- | ---: | --- | ---: | ---: | --- | ---: | --- |",
    ]
    for key, ev in report["evals"].items():
        mc = (ev.get("mcnemar") or {}).get("p_value")
        lines.append(
            f"| {key} | {ev['rows']} | {ev['metric']} | {ev['champion']:.4f} | {ev['challenger']:.4f} | "
            f"{ev['diff']:+.4f} [{ev['low']:+.4f}, {ev['high']:+.4f}] | "
            f"{'-' if mc is None else f'{mc:.3g}'} | {ev['report']} |"
        )
    lines += ["", f"Seconds per step: {report.get('timings_s')}", ""]
    return "\n".join(lines)
