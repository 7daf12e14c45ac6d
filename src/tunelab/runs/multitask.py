"""One multi-task run (`procedure: {name: multitask}`): the tasks' data, one shared encoder
with a head per task, the one training loop, per-task scores, one saved model per task.

Sits beside runs/train.py (it needs training and evaluation). The run directory holds
`model/<task>/`: a plain Hugging Face folder per task (the shared encoder's weights plus
that task's head, tokenizer, tunelab.json), loadable with `tunelab predict`, `tunelab eval`
or `transformers.pipeline` like any single-task model; `model/multitask.json` lists them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tunelab.atomic import atomic_dir, atomic_write_json, atomic_write_text
from tunelab.config import ModelMeta, RunConfig, updated, write_model_meta, write_run_result
from tunelab.config.multitask import task_config, task_data_configs
from tunelab.evaluation.run_report.page import write_report
from tunelab.evaluation.scoring import scorer
from tunelab.methods import get_method
from tunelab.models import lengths as model_lengths
from tunelab.models.loading import count_parameters, load_config, load_tokenizer
from tunelab.models.sources import resolve_model
from tunelab.runs import settings
from tunelab.runs.outputs import build_result, run_info, run_timing
from tunelab.tasks import get_task
from tunelab.training.loggers import read_metrics
from tunelab.training.loop import LoopSettings, train_loop
from tunelab.training.procedures import ProcedureContext, build_procedure
from tunelab.training.procedures import multitask as mt
from tunelab.training.rundir import prepare_run_dir
from tunelab.training.trackers import Trackers

MEAN_METRIC = "mean_primary"  # mean over tasks of each task's primary validation metric


def _no_task_loss(*_):
    raise AssertionError("multitask: the procedure computes each task's loss")


class _Tasks:
    """What the default choices ask of a task, for several tasks at once."""

    default_metric = MEAN_METRIC  # the Task descriptors runs/settings.py reads
    default_metric_why = "the mean of every task's primary validation metric"


def _resolve(cfg: RunConfig, tcfgs: dict, feats_len: int, chosen: dict) -> RunConfig:
    """Fill the open training settings (lr, epochs, early stopping) as a single run would,
    and record the task data sections as resolved (max_length chosen) in the config."""

    cfg, more = settings.choose_settings(cfg, _Tasks, feats_len)
    chosen.update(more)
    lengths = {
        f"procedure.tasks.{i}.data.max_length": tcfgs[e.name].data.max_length
        for i, e in enumerate(cfg.procedure.tasks)
    }
    return updated(cfg, **lengths)


def _numeric(scores: dict, name: str) -> dict:
    return {f"{name}/{k}": v for k, v in scores.items() if isinstance(v, (int, float))}


def run_multitask(
    cfg: RunConfig,
    *,
    overwrite: bool = False,
    resume: bool = False,
    on_eval: Callable[[int, dict], None] | None = None,
) -> dict[str, Any]:
    """Train, evaluate and save one multi-task run; returns results (also results.json)."""
    from transformers import set_seed

    t_start = time.perf_counter()
    run_dir = Path(cfg.output)
    entries = cfg.procedure.tasks
    names = [e.name for e in entries]
    tcfgs = {
        e.name: task_config(cfg, i, d)
        for i, (e, d) in enumerate(zip(entries, task_data_configs(cfg), strict=True))
    }
    tasks = {e.name: get_task(e.task) for e in entries}
    data = {n: tasks[n].load_data(tcfgs[n]) for n in names}  # data errors before any weights
    source = resolve_model(cfg.model)
    tokenizer = load_tokenizer(source)
    prepare_run_dir(run_dir, cfg, overwrite=overwrite, resume=resume)

    model_max = model_lengths.model_max_length(tokenizer, load_config(source))
    chosen: dict[str, dict] = {}
    feats: dict[str, dict] = {}
    for i, n in enumerate(names):
        task, d = tasks[n], tcfgs[n].data
        if d.max_length is None:
            lengths = task.featurize(data[n].splits["train"], tokenizer, None).lengths
            value, why = model_lengths.choose_max_length(lengths, model_max)
            tcfgs[n] = updated(tcfgs[n], **{"data.max_length": value})
            chosen[f"procedure.tasks.{i}.data.max_length"] = {"value": value, "why": why}
        feats[n] = {
            s: task.featurize(split, tokenizer, tcfgs[n].data.max_length)
            for s, split in data[n].splits.items()
        }
    train_feats = mt.MultitaskFeatures(
        names,
        [feats[n]["train"] for n in names],
        [tasks[n].collate for n in names],
    )
    cfg = _resolve(cfg, tcfgs, len(train_feats), chosen)
    for key, c in chosen.items():
        print(f"default {key} = {c['value']}  ({c['why']})")
    atomic_write_text(
        run_dir / "config.yaml", yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
    )

    # MLflow/W&B runs get the resolved config now, each logged step, then the final results
    with Trackers(cfg, run_dir, resume=resume) as trackers:
        set_seed(cfg.train.seed)
        models = {n: tasks[n].load_model(source, data[n], tcfgs[n], tokenizer) for n in names}
        anchor = mt.share_encoder(models)
        method = get_method(cfg.method.name)
        heads = {n: tasks[n].head_modules(models[n]) for n in names}
        mt.apply_method(
            models, anchor, method, cfg.method, {e.name: e.task for e in entries}, heads
        )
        model = mt.MultitaskModel(models)
        trainable, total = count_parameters(model)
        print(
            f"multitask ({', '.join(names)}; shared encoder) / {cfg.method.name}: training "
            f"{trainable:,} of {total:,} parameters ({trainable / total:.2%})"
        )
        pad_id = tokenizer.pad_token_id
        scores_of = {n: scorer(tasks[n].name) for n in names}

        def score(m, n: str, split: str) -> dict:
            return scores_of[n](
                m.tasks[n],
                feats[n][split],
                data[n].labels,
                cfg.eval.batch_size,
                pad_id,
                split=data[n].splits[split],
            )

        def evaluate(m) -> dict:
            out: dict[str, float] = {}
            primary, losses = [], []
            for n in names:
                s = score(m, n, "validation")
                out.update(_numeric(s, n))
                primary.append(s[tasks[n].default_metric])
                if "loss" in s:
                    losses.append(s["loss"])
            out[MEAN_METRIC] = sum(primary) / len(primary)
            if losses:
                out["loss"] = sum(losses) / len(losses)
            return out

        procedure = build_procedure(
            ProcedureContext(cfg, tasks, data, train_feats, tokenizer, model)
        )
        es = cfg.train.early_stopping
        settings = LoopSettings(
            lr=cfg.train.lr,
            epochs=cfg.train.epochs or 1.0,
            metric=es.metric,
            mode=es.mode,
            pad_id=pad_id,
            collate=mt.multitask_collate,
            procedure=procedure,
            batch_order=mt.make_batch_order(
                train_feats, cfg.procedure.sampling, cfg.procedure.temperature
            ),
            on_eval=on_eval,
            trackers=trackers,
        )
        loop = train_loop(
            model, train_feats, cfg.train, settings, run_dir, _no_task_loss, evaluate, resume=resume
        )

        t0 = time.perf_counter()
        results: dict[str, Any] = {"tasks": {}}
        for split in ("validation", "test"):
            flat, primary = {}, []
            for n in names:
                if split in feats[n]:
                    s = score(model, n, split)
                    results["tasks"].setdefault(
                        n, {"task": tasks[n].name, "metric": tasks[n].default_metric}
                    )[split] = s
                    flat.update(_numeric(s, n))
                    primary.append(s[tasks[n].default_metric])
            if flat:
                if len(primary) == len(names):
                    flat[MEAN_METRIC] = sum(primary) / len(primary)
                results[split] = flat
        eval_seconds = time.perf_counter() - t0

        _save_models(run_dir, model, anchor, tokenizer, cfg, tcfgs, data)
        info = run_info(
            cfg,
            loop,
            task="multitask",
            procedure=procedure,
            trainable=trainable,
            total=total,
            rows={n: {s: len(x) for s, x in data[n].splits.items()} for n in names},
            labels={n: data[n].labels.names for n in names},
            models={n: str(run_dir / "model" / n) for n in names},
            defaults_chosen=chosen,
        )
        result = build_result(
            {s: results[s] for s in ("validation", "test") if s in results},
            timing=run_timing(loop, eval_seconds=eval_seconds, started=t_start),
            run=info,
            tasks=results["tasks"],
        )
        written = write_run_result(run_dir, result)
        trackers.finish(written)
        title = f"tunelab run: {cfg.model} / {cfg.method.name} / multitask ({', '.join(names)})"
        write_report(run_dir, written, read_metrics(run_dir), title=title)
        return written


def _save_models(run_dir: Path, model, anchor: str, tokenizer, cfg: RunConfig, tcfgs, data) -> None:
    """model/<task>/ per task: the shared encoder (LoRA folded in) plus that task's head."""
    if hasattr(model.tasks[anchor], "merge_and_unload"):  # peft: fold the update into the
        model.tasks[anchor] = model.tasks[anchor].merge_and_unload(
            safe_merge=True
        )  # shared modules
    names = list(model.tasks.keys())
    with atomic_dir(run_dir / "model") as tmp:
        for n in names:
            folder = tmp / n
            folder.mkdir()
            model.tasks[n].save_pretrained(folder, safe_serialization=True)
            tokenizer.save_pretrained(folder)
            d = tcfgs[n].data
            meta = ModelMeta(
                task=tcfgs[n].task,
                labels=data[n].labels.to_dict(),
                max_length=d.max_length,
                columns={"text": d.text, "text_pair": d.text_pair, "label": d.label},
                base_model=cfg.model,
                method=cfg.method.name,
                merged=cfg.method.name not in ("full", "freeze"),
                multitask={"name": n, "tasks": names, "shared_encoder": True},
                tunelab_version=cfg.versions["tunelab"],
            )
            write_model_meta(folder, meta)
        atomic_write_json(
            tmp / "multitask.json",
            {"tasks": {n: {"task": tcfgs[n].task, "path": n} for n in names}},
        )


def format_multitask_table(results: dict) -> str:
    """Per-task primary metric on validation and test, for `tunelab train`'s summary."""
    lines = [f"{'task':14s} {'metric':10s} {'validation':>12s} {'test':>12s}"]
    for name, t in results["tasks"].items():
        cells = [
            f"{t[s][t['metric']]:12.4f}" if s in t else f"{'-':>12s}"
            for s in ("validation", "test")
        ]
        lines.append(f"{name:14s} {t['metric']:10s} " + " ".join(cells))
    if MEAN_METRIC in results.get("validation", {}):
        lines.append(f"{MEAN_METRIC} (validation): {results['validation'][MEAN_METRIC]:.4f}")
    return "\n".join(lines)
