"""The prepare stage: clean -> anonymize -> deduplicate -> split -> remove leakage ->
balance -> augment -> write, every step optional and counted in the report.

Used by `tunelab data prepare` and, when the config has `data.prepare:`, by `tunelab train`
before it reads the data. The output folder is keyed by a fingerprint of the input files and
settings: a second run with the same inputs reuses it.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tunelab.atomic import atomic_dir
from tunelab.config.schema import DataConfig, PrepareConfig
from tunelab.data.fingerprint import fingerprint
from tunelab.data.labels import discover_labels, encode_labels
from tunelab.data.readers import read_table, require_columns
from tunelab.errors import DataError

SPLITS = ("train", "validation", "test")


@dataclass
class Prepared:
    out_dir: Path
    files: dict[str, Path]
    report: dict
    cached: bool = False
    class_weights: bool = False  # balance.method == class_weights: the loss should weigh classes


@dataclass
class _Log:
    steps: list[dict] = field(default_factory=list)
    last: float = field(default_factory=time.perf_counter)

    def add(self, step: str, rows_in: int, rows_out: int, **details) -> None:
        """Record a finished step; its time is the time since the previous record."""
        now = time.perf_counter()
        seconds, self.last = round(now - self.last, 3), now
        self.steps.append(
            {"step": step, "rows_in": rows_in, "rows_out": rows_out, "seconds": seconds, **details}
        )
        print(
            f"prepare: {step:<10s} {rows_in:>8,} -> {rows_out:>8,} rows  {_brief(details)}",
            flush=True,
        )


def _brief(details: dict) -> str:
    parts = [f"{k}={v}" for k, v in details.items() if isinstance(v, (int, float)) and v]
    return " ".join(parts)


def output_dir(data: DataConfig, run_output: str) -> Path:
    """data.prepare.output, else a sibling of the run folder (`runs/sst2` -> `runs/sst2-prepared`),
    so that `tunelab train --overwrite` keeps the cached stage."""
    run = Path(run_output)
    return Path(data.prepare.output or run.parent / f"{run.name}-prepared")


def _settings(data: DataConfig) -> dict:
    return {
        "prepare": data.prepare.model_dump(mode="json", exclude={"output"}),
        "columns": [data.text, data.text_pair, data.label],
        "label_names": data.label_names,
    }


def prepare(data: DataConfig, run_output: str, *, force: bool = False) -> Prepared:
    """Run the stage (or reuse its cached output); return where the prepared splits are."""
    cfg = data.prepare
    if cfg is None:
        raise ValueError("prepare() needs data.prepare")
    inputs = {s: getattr(data, s) for s in SPLITS if getattr(data, s)}
    out = output_dir(data, run_output)
    fp = fingerprint(inputs, _settings(data))
    stamp = out / "fingerprint.json"
    if not force and stamp.is_file() and json.loads(stamp.read_text()).get("fingerprint") == fp:
        report = json.loads((out / "report.json").read_text())
        files = {s: out / f"{s}.{cfg.format}" for s in report["prepare"]["splits"]}
        print(f"prepare: inputs and settings unchanged, reusing {out}", flush=True)
        return Prepared(
            out, files, report, cached=True, class_weights=cfg.balance.method == "class_weights"
        )

    t0 = time.perf_counter()
    log = _Log()
    frames = {s: read_table(p) for s, p in inputs.items()}
    columns = [c for c in (data.text, data.text_pair, data.label) if c]
    for df in frames.values():
        require_columns(
            df, df.attrs["source"], columns + ([cfg.split.group] if cfg.split.group else [])
        )
    discover_labels(
        list(frames.values()), data.label, data.label_names
    )  # mixed types etc. fail here
    rows_in = sum(len(df) for df in frames.values())
    log.add("read", rows_in, rows_in)
    text_cols = [c for c in (data.text, data.text_pair) if c]

    from tunelab.data import prepare_steps as steps

    frames = steps.clean(frames, text_cols, cfg.clean, log)
    frames = steps.anonymize(frames, text_cols, cfg.pii, log)
    frames = steps.deduplicate(frames, text_cols, data.label, cfg.dedup, cfg.seed, log)
    _check_not_empty(frames, inputs, rows_in)
    frames = steps.split(frames, data, cfg, log)
    frames = steps.remove_leakage(frames, text_cols, cfg.split.remove_leakage, log)
    _check_not_empty(frames, inputs, rows_in)
    inspected = dict(
        frames
    )  # the report inspects the data before balancing and augmentation add copies
    labels = discover_labels([frames["train"]], data.label, data.label_names)
    frames["train"] = steps.balance(
        frames["train"],
        encode_labels(frames["train"], data.label, labels),
        cfg.balance,
        cfg.seed,
        log,
    )
    frames["train"] = steps.augment(frames["train"], data.text, cfg.augment, cfg.seed, log)
    folds = steps.folds(frames["train"], data, cfg) if cfg.split.folds else []

    report = _report(inspected, frames, data, cfg, log, rows_in, time.perf_counter() - t0)
    with atomic_dir(out) as tmp:
        for name, df in frames.items():
            _write(df, tmp / f"{name}.{cfg.format}", cfg.format)
        for i, (tr, va) in enumerate(folds):
            _write(tr, tmp / f"fold-{i}" / f"train.{cfg.format}", cfg.format)
            _write(va, tmp / f"fold-{i}" / f"validation.{cfg.format}", cfg.format)
        from tunelab.data.report import write_data_report

        write_data_report(report, tmp, title="tunelab data prepare")
        (tmp / "fingerprint.json").write_text(
            json.dumps({"fingerprint": fp, "inputs": inputs}, indent=2)
        )
    files = {name: out / f"{name}.{cfg.format}" for name in frames}
    return Prepared(
        out,
        files,
        json.loads((out / "report.json").read_text()),
        class_weights=cfg.balance.method == "class_weights",
    )


def _check_not_empty(frames: dict, inputs: dict, rows_in: int) -> None:
    for name, df in frames.items():
        if len(df) == 0:
            raise DataError(
                inputs.get(name, inputs["train"]),
                f"the {name} split is empty after cleaning, deduplication and leakage removal "
                f"({rows_in:,} rows in); give more rows, a larger {name} ratio, or relax data.prepare "
                "(dedup.near: false, dedup.conflicts: majority, clean.min_chars)",
            )


def _report(
    inspected: dict,
    frames: dict,
    data: DataConfig,
    cfg: PrepareConfig,
    log: _Log,
    rows_in: int,
    seconds: float,
) -> dict:
    """inspect_frame of the cleaned train split (vs the other splits) plus the step log."""
    from tunelab.data.inspect import inspect_frame

    others = {n: df for n, df in inspected.items() if n != "train"}
    report = inspect_frame(
        inspected["train"],
        data.text,
        data.label,
        text_pair=data.text_pair,
        group=cfg.group,
        others=others,
        seed=cfg.seed,
    )
    report["prepare"] = {
        "steps": log.steps,
        "rows_in": rows_in,
        "rows_out": sum(len(df) for df in frames.values()),
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows_in / seconds, 1) if seconds > 0 else None,
        "splits": {
            n: {"rows": len(df), "labels": _label_counts(df[data.label])}
            for n, df in frames.items()
        },
        "settings": cfg.model_dump(mode="json"),
    }
    return report


def _label_counts(column: pd.Series) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in column:
        for x in v if isinstance(v, (list, tuple, np.ndarray)) else [v]:
            counts[str(x)] = counts.get(str(x), 0) + 1
    return dict(sorted(counts.items()))


def _write(df: pd.DataFrame, path: Path, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df = df.reset_index(drop=True)
    if fmt == "parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_json(path, orient="records", lines=True, force_ascii=False)


def shuffled(n: int, seed: int) -> list[int]:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order
