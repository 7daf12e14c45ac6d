"""`tunelab eval`: one or more models on one labelled file, as report.json + report.html.

Each model is loaded (eval_models.py), run once over the file, and its per-row outputs kept
(RowOutputs, rows.py); everything after that is arithmetic on those outputs: bootstrap
intervals of each headline metric, a paired bootstrap test (and McNemar on right/wrong rows)
of every model against the first, metrics per value of a group column (slices.py), and the
training diagnosis of each model that is a run folder with metrics.jsonl.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.errors import ConfigError, DataError, TunelabError
from tunelab.evaluation.diagnosis.diagnose import diagnose, read_metrics, run_metric
from tunelab.evaluation.report import rows_generate, rows_label
from tunelab.evaluation.report.columns import column_hint
from tunelab.evaluation.report.jsonable import jsonable
from tunelab.evaluation.report.models import iter_models
from tunelab.evaluation.report.rows import RowOutputs
from tunelab.metrics.stats import bootstrap_ci, mcnemar, paired_test
from tunelab.tasks import get_task

LEVEL = 0.95


def row_outputs(
    trained,
    path,
    name: str,
    *,
    batch_size: int = 64,
    text: str | None = None,
    text_pair: str | None = None,
    label: str | None = None,
    generate_rows: int | None = 32,
    gen=None,
    seed: int = 0,
) -> RowOutputs:
    """The per-row outputs of `trained` on the file at `path`, by the model's task."""
    task = get_task(trained.task)
    if task.eval_rows is not None:
        return task.eval_rows(
            trained, path, name, batch_size=batch_size, text=text, text_pair=text_pair, label=label
        )
    kind = task.head_kind
    if kind == "sequence":
        return rows_label.classification_rows(
            trained, path, name, batch_size=batch_size, text=text, text_pair=text_pair, label=label
        )
    if kind == "token":
        return rows_label.token_rows(
            trained, path, name, batch_size=batch_size, text=text, label=label
        )
    if kind == "masked":
        return rows_label.mlm_rows(trained, path, name, batch_size=batch_size, text=text, seed=seed)
    fn = {
        "causal": rows_generate.causal_lm_rows,
        "encoder-decoder": rows_generate.seq2seq_rows,
    }.get(kind)
    if fn is None:
        from tunelab.errors import TunelabError

        raise TunelabError(f"{name}: no evaluation for task '{task.name}'")
    return fn(
        trained,
        path,
        name,
        generate_rows=generate_rows,
        gen=gen,
        batch_size=min(batch_size, 16),
        text=text,
    )


def _intervals(out: RowOutputs, samples: int, seed: int) -> dict[str, dict]:
    """{metric: {"value", "low", "high", ...}}; no interval (None) with samples = 0."""
    if samples > 0 and out.n > 0:
        return bootstrap_ci(out.metric_fn, out.n, samples=samples, level=LEVEL, seed=seed)
    full = out.metric_fn(np.arange(out.n))
    return {
        k: {"value": v, "low": None, "high": None, "std": None, "samples": 0}
        for k, v in full.items()
    }


def _paired(a: RowOutputs, b: RowOutputs, samples: int, seed: int) -> dict:
    both = a.correct is not None and b.correct is not None
    if samples > 0:
        return paired_test(
            a.metric_fn,
            b.metric_fn,
            a.n,
            samples=samples,
            level=LEVEL,
            seed=seed,
            correct_a=a.correct if both else None,
            correct_b=b.correct if both else None,
        )
    fa, fb = a.metric_fn(np.arange(a.n)), b.metric_fn(np.arange(b.n))
    out: dict[str, Any] = {
        k: {
            "a": fa[k],
            "b": fb[k],
            "diff": fb[k] - fa[k],
            "low": None,
            "high": None,
            "p_value": None,
        }
        for k in fa
        if k in fb
    }
    if both:
        out["mcnemar"] = mcnemar(a.correct, b.correct)
    return out


def _diagnosis(run_dir: Path) -> dict | None:
    """The training diagnosis of a run folder (records kept for the plot), or None."""
    records = read_metrics(run_dir)
    if not records:
        return None
    metric, mode = run_metric(run_dir)
    return {"run": str(run_dir), "records": records, **diagnose(records, metric=metric, mode=mode)}


def default_output(first_run: Path | None, data) -> Path:
    """<run dir>/eval-<data file stem>/ for a run, else ./eval-<stem>/."""
    stem = Path(str(data).rstrip("/")).stem or "data"
    return (first_run if first_run is not None else Path.cwd()) / f"eval-{stem}"


def evaluate_report(
    model: str | Path,
    data: str | Path,
    *,
    compare: list[str] | tuple[str, ...] = (),
    names: list[str] | None = None,
    group: str | None = None,
    output: str | Path | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    batch_size: int = 64,
    text: str | None = None,
    text_pair: str | None = None,
    label: str | None = None,
    generate_rows: int | None = 32,
    generation: dict | None = None,
    min_slice_rows: int = 30,
    split: str = "test",
    write: bool = True,
) -> dict:
    """Evaluate `model` (and each of `compare`) on `data`; write OUTPUT/report.json and
    OUTPUT/report.html (unless `write` is False) and return what report.json holds.

    Models: run folders, model folders, or base models (alias, hub id, folder); a compared
    model must share the task and label names of the first. `bootstrap` resamples (0: no
    intervals or tests), `group` a column of `data` to slice by, `generate_rows` how many rows
    a generative model generates for (None: all), `generation` overrides of the first model's
    decoding settings (every model decodes with the same settings), `split` what the data is
    (a name kept in the report)."""
    if not Path(data).exists():
        raise DataError(str(data), "no such file")
    if bootstrap < 0:
        raise ConfigError("--bootstrap", "must be >= 0", bootstrap, has_value=True)
    given = {"text": text, "text_pair": text_pair, "label": label}
    models, outputs, gen = [], [], None
    for m in iter_models([str(model), *map(str, compare)], names):
        if not models:  # every model reads the columns the first one trained on (same rows)
            cols = m.trained.meta.columns
            text = text or cols.get("text")
            text_pair = text_pair if text_pair is not None else cols.get("text_pair")
            label = label or cols.get("label")
        if gen is None and get_task(m.trained.task).generates:
            from tunelab.config.generation import GenerationConfig

            own = m.trained.meta.generation or {}
            gen = GenerationConfig(**{**own, **(generation or {})})  # the same for every model
        used = {"text": text, "text_pair": text_pair, "label": label}
        with column_hint(given, used):
            out = row_outputs(
                m.trained,
                data,
                m.name,
                batch_size=batch_size,
                generate_rows=generate_rows,
                gen=gen,
                seed=seed,
                text=text,
                text_pair=text_pair,
                label=label,
            )
        m.trained.model = None  # free the weights before the next model loads
        models.append(m)
        outputs.append(out)
    first = outputs[0]
    for out in outputs[1:]:
        if out.n != first.n:
            raise TunelabError(
                f"{out.name} scored {out.n} rows of {data} but {first.name} {first.n}; "
                "compared models must read the file the same way"
            )
    report: dict[str, Any] = {
        "data": str(data),
        "split": split,
        "rows": first.n,
        "task": first.task,
        "settings": {"bootstrap": bootstrap, "level": LEVEL, "seed": seed, "group": group},
        "headline": list(first.metric_fn(np.arange(first.n)).keys()),
        "models": [
            {
                "name": out.name,
                "spec": m.spec,
                "run": str(m.run_dir) if m.run_dir else None,
                "task": out.task,
                "n": out.n,
                "ci": _intervals(out, bootstrap, seed),
                "metrics": out.metrics,
                "details": out.details,
            }
            for m, out in zip(models, outputs)
        ],
        "comparison": [
            {
                "name": out.name,
                "baseline": first.name,
                "tests": _paired(first, out, bootstrap, seed),
            }
            for out in outputs[1:]
        ],
    }
    if gen is not None:
        report["settings"]["generation"] = gen.model_dump()
    if group:
        from tunelab.evaluation.report.slices import read_groups, slice_metrics

        groups = read_groups(data, group, first.n, first.details.get("rows"))
        report["slices"] = slice_metrics(
            outputs,
            groups,
            column=group,
            min_rows=min_slice_rows,
            samples=bootstrap,
            level=LEVEL,
            seed=seed,
        )
    report["diagnosis"] = {}
    seen: set[Path] = set()
    for m in models:  # each run once, under the first name that points at it
        if m.run_dir is not None and m.run_dir.resolve() not in seen:
            seen.add(m.run_dir.resolve())
            diagnosis = _diagnosis(m.run_dir)
            if diagnosis is not None:
                report["diagnosis"][m.name] = diagnosis
    out_dir = Path(output) if output is not None else default_output(models[0].run_dir, data)
    report["output"] = str(out_dir)
    data = jsonable(report)
    for d in data["diagnosis"].values():
        d.pop("records", None)  # the metrics.jsonl records: for the plot only
    if write:
        from tunelab.atomic import atomic_write_text
        from tunelab.evaluation.report.html import render_eval_html

        html = render_eval_html(report, outputs)  # first: a failure leaves no file written
        atomic_write_text(out_dir / "report.json", json.dumps(data, indent=2) + "\n")
        atomic_write_text(out_dir / "report.html", html)
    return data
