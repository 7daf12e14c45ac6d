"""k-fold cross-validation (`train.folds: k`): k runs, each validated on one held-out fold.

Run level, like runs/train.py. The training rows (after `data.prepare` and `data.max_train_rows`)
are cut into k folds by `data.splits.kfold_indices`, stratified by label for
classification, under `train.seed`; fold i's rows are written to
`<output>/data/fold-i/{train,validation}.jsonl` (with rows.json: the 0-based row numbers of
the training file in each) and trained as an ordinary run in `<output>/fold-i/`. A test
file, when given, is scored by every fold's model. `<output>/folds.json` holds per-fold
metrics and the mean and sample standard deviation (ddof=1) of every numeric metric.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunelab.atomic import atomic_write_json
from tunelab.config import RunConfig
from tunelab.config.run_result import RESULTS_FILE, read_run_result, run_result
from tunelab.data import discover_labels, encode_labels, read_table, require_columns
from tunelab.data.prepare import _write
from tunelab.data.splits import kfold_indices
from tunelab.errors import ConfigError, RunDirError
from tunelab.runs import settings
from tunelab.runs.train import run_training
from tunelab.tasks import get_task


def run_kfold(cfg: RunConfig, *, overwrite: bool = False, resume: bool = False) -> dict[str, Any]:
    """Train the k folds of `cfg` (train.folds = k) and return what folds.json holds."""
    k, out = cfg.train.folds, Path(cfg.output)
    if k is None or cfg.data is None:
        raise ConfigError("train.folds", "k-fold needs train.folds and data.train")
    _prepare_output(out, overwrite, resume)
    t0 = time.perf_counter()
    data_cfg = settings.prepared(cfg)  # prepared splits (and balanced class weights) when asked for
    df, y = _training_rows(data_cfg)
    try:
        folds = kfold_indices(len(df), k, cfg.train.seed, y=y)
    except ValueError as exc:
        raise ConfigError("train.folds", f"{exc} (training rows: {len(df)})") from None
    base = data_cfg.model_dump(mode="json", exclude={"versions", "search"})
    per_fold = []
    for i, (tr, va) in enumerate(folds):
        files = _write_fold(df, tr, va, out / "data" / f"fold-{i}")
        raw = json.loads(json.dumps(base))
        raw["data"].update(
            train=str(files["train"]), validation=str(files["validation"]), max_train_rows=None
        )
        raw["train"]["folds"] = None
        raw["output"] = str(out / f"fold-{i}")
        from tunelab.config.load import validate_config

        fold_cfg = validate_config(raw)
        run_dir = Path(fold_cfg.output)
        print(f"fold {i + 1}/{k}: train {len(tr)} rows, validate {len(va)} rows -> {run_dir}")
        if resume and (run_dir / RESULTS_FILE).is_file():
            results = read_run_result(run_dir).to_dict()
            print(f"fold {i + 1}/{k}: done before, results.json reused")
        else:
            started = resume and any((run_dir / "checkpoints").glob("step-*"))
            results = run_training(fold_cfg, resume=started)
        per_fold.append(_fold_summary(i, results, len(tr), len(va)))
    summary: dict[str, Any] = {
        "folds": k,
        "output": str(out),
        "rows": len(df),
        "stratified": y is not None,
        "seed": cfg.train.seed,
        "metric": (per_fold[0].get("best") or {}).get("metric"),
        "per_fold": per_fold,
    }
    for split in ("validation", "test"):
        if all(split in f for f in per_fold):
            summary[split] = mean_std([f[split] for f in per_fold])
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    atomic_write_json(out / "folds.json", summary)
    return summary


def _prepare_output(out: Path, overwrite: bool, resume: bool) -> None:
    if (out / "checkpoints").exists() or (out / "model").exists():  # a plain run lives here
        if not overwrite:
            raise RunDirError(
                f"output '{out}' holds a single (not k-fold) run; use --overwrite or another output"
            )
    if overwrite and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _training_rows(cfg: RunConfig) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The training rows as the run would read them (row cap applied), and the label ids
    to stratify by (classification only)."""
    d = cfg.data
    if Path(d.train).suffix.lower() == ".txt":  # mlm documents: one per line
        lines = Path(d.train).read_text(encoding="utf-8").splitlines()
        df = pd.DataFrame({d.text: [x for x in lines if x.strip()]})
    else:
        df = read_table(d.train)
    if d.max_train_rows:
        df = df.head(d.max_train_rows)
    if not get_task(cfg.task).labelled or get_task(cfg.task).head_kind != "sequence":
        return df, None
    require_columns(df, d.train, [d.label])
    labels = discover_labels([df], d.label, d.label_names)
    return df, encode_labels(df, d.label, labels)


def _write_fold(df: pd.DataFrame, tr: np.ndarray, va: np.ndarray, folder: Path) -> dict:
    files = {"train": folder / "train.jsonl", "validation": folder / "validation.jsonl"}
    _write(df.iloc[tr], files["train"], "jsonl")
    _write(df.iloc[va], files["validation"], "jsonl")
    atomic_write_json(folder / "rows.json", {"train": tr.tolist(), "validation": va.tolist()})
    return files


def _numeric(scores: dict) -> dict[str, float]:
    return {
        k: v
        for k, v in scores.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "n"
    }


def _fold_summary(i: int, results: dict, n_train: int, n_val: int) -> dict:
    result = run_result(results)
    out = {
        "fold": i,
        "output": result.run.output,
        "rows": {"train": n_train, "validation": n_val},
        "steps": result.run.steps,
        "best": result.run.best,
        "validation": _numeric(result.validation or {}),
    }
    if result.test is not None:
        out["test"] = _numeric(result.test)
    return out


def mean_std(per_fold: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """{"mean": {metric: ..}, "std": {metric: ..}} over the metrics every fold has; std is
    the sample standard deviation (ddof=1)."""
    keys = [k for k in per_fold[0] if all(k in f for f in per_fold)]
    values = {k: np.array([f[k] for f in per_fold], dtype=float) for k in keys}
    return {
        "mean": {k: float(v.mean()) for k, v in values.items()},
        "std": {k: float(v.std(ddof=1)) if len(v) > 1 else 0.0 for k, v in values.items()},
    }


def format_folds_table(summary: dict) -> str:
    """One block per split: a metric per row, a fold per column, then mean ± std."""
    k = summary["folds"]
    lines = []
    for split in ("validation", "test"):
        if split not in summary:
            continue
        stats = summary[split]
        heads = [f"{split} ({k} folds)"] + [f"fold-{f['fold']}" for f in summary["per_fold"]]
        heads.append("mean ± std")
        rows = []
        for metric, mean in stats["mean"].items():
            cells = [_num(f[split].get(metric)) for f in summary["per_fold"]]
            rows.append([metric, *cells, f"{_num(mean)} ± {_num(stats['std'][metric])}"])
        widths = [max(len(h), *(len(r[j]) for r in rows)) for j, h in enumerate(heads)]
        lines.append(
            "  ".join(
                h.ljust(widths[0]) if j == 0 else h.rjust(widths[j]) for j, h in enumerate(heads)
            )
        )
        lines += [
            "  ".join(c.ljust(widths[0]) if j == 0 else c.rjust(widths[j]) for j, c in enumerate(r))
            for r in rows
        ]
        lines.append("")
    return "\n".join(lines).rstrip()


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    if float(v).is_integer() and abs(v) >= 10:
        return f"{int(v)}"
    return f"{v:.4f}"
