"""One fine-tuning run from a validated config to a run directory (see DESIGN.md).

Sits above `training` and `evaluation` and wires them: training never imports evaluation,
so the loop gets its validation scoring as a callback from here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tunelab.atomic import atomic_dir, atomic_write_text
from tunelab.config import ModelMeta, RunConfig, RunResult, write_model_meta, write_run_result
from tunelab.evaluation.run_report.page import write_report
from tunelab.evaluation.run_report.plots import plot_confusion_matrix
from tunelab.evaluation.scoring import scorer
from tunelab.inference.generation import split_samples
from tunelab.methods import fit, get_method
from tunelab.models.loading import count_parameters, load_config, load_options, load_tokenizer
from tunelab.models.sources import resolve_model
from tunelab.runs.continual import continual_setup
from tunelab.runs.outputs import build_result, run_info, run_timing
from tunelab.runs.plan import plan_record, run_preflight
from tunelab.runs.plan_measure import PeakMemory
from tunelab.runs.settings import choose_max_length, choose_settings, prepared
from tunelab.tasks import get_task
from tunelab.training.loggers import read_metrics
from tunelab.training.loop import LoopSettings, train_loop
from tunelab.training.procedures import ProcedureContext, build_procedure
from tunelab.training.rundir import prepare_run_dir
from tunelab.training.trackers import Trackers, check_trackers


def run_training(
    cfg: RunConfig,
    *,
    overwrite: bool = False,
    resume: bool = False,
    on_eval: Callable[[int, dict], None] | None = None,
    preflight: bool = False,
) -> dict[str, Any]:
    """Train, evaluate and save one run. `on_eval(step, scores)` is called after every
    validation (hyperparameter search reports and prunes through it). `preflight`: plan the
    run first (runs/plan.py) and refuse it when it will not fit; results.json then holds
    the estimated peak beside the measured one."""
    check_trackers(cfg.train)  # mlflow/wandb configured but not installed: before any work
    if cfg.procedure.name == "multitask":  # several tasks, a shared encoder: its own wiring
        from tunelab.runs.multitask import run_multitask

        return run_multitask(cfg, overwrite=overwrite, resume=resume, on_eval=on_eval)
    import torch
    from transformers import set_seed

    t_start = time.perf_counter()
    run_dir = Path(cfg.output)
    task = get_task(cfg.task)
    method = get_method(cfg.method.name)
    fit.check(cfg.method, cfg.task)  # e.g. qlora without a GPU: refuse before any work
    plan = run_preflight(cfg) if preflight else None  # PlanRefused: before any weights load
    data_cfg = prepared(cfg)  # the config as the data is read: prepared splits if asked
    data = task.load_data(data_cfg)  # every data error surfaces here, before any weights load
    data, forgetting = continual_setup(cfg, task, data)  # replay rows in train; old validation
    source = resolve_model(cfg.model)
    fit.check(cfg.method, cfg.task, load_config(source))  # this model family: before weights
    tokenizer = load_tokenizer(source)
    prepare_run_dir(run_dir, cfg, overwrite=overwrite, resume=resume)

    train_split = data.splits["train"]
    lengths = task.featurize(train_split, tokenizer, None).lengths
    cfg, chosen = choose_max_length(cfg, task, lengths, tokenizer, load_config(source))
    feats = {
        name: task.featurize(split, tokenizer, cfg.data.max_length)
        for name, split in data.splits.items()
    }
    cfg, more = choose_settings(cfg, task, len(feats["train"]))
    chosen.update(more)
    for key, c in chosen.items():
        print(f"default {key} = {c['value']}  ({c['why']})")
    atomic_write_text(
        run_dir / "config.yaml", yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
    )
    # MLflow/W&B runs get the resolved config now, each logged step, then the final results
    with Trackers(cfg, run_dir, resume=resume) as trackers:
        weights = task.class_weights(
            getattr(train_split, "y", None), data.labels, data_cfg.train.class_weights
        )
        if weights is not None:
            print(
                "class weights: "
                + ", ".join(f"{n}={w:.2f}" for n, w in zip(data.labels.names, weights))
            )

        set_seed(cfg.train.seed)
        peak = PeakMemory().start()  # what loading and training add (a daemon sampler)
        if getattr(cfg.procedure, "student_layers", None):  # distill: the teacher's first k layers
            from tunelab.training.procedures.distill_models import load_student

            model = load_student(cfg, data, tokenizer)
        else:
            with load_options(**getattr(method, "load_options", lambda c: {})(cfg.method)):
                model = task.load_model(source, data, cfg, tokenizer)  # qlora: 4-bit
        head = task.head_modules(model)
        model = method.apply(model, cfg.method, cfg.task, head=head)
        trainable, total = count_parameters(model)
        print(
            f"{cfg.method.name}: training {trainable:,} of {total:,} parameters ({trainable / total:.2%})"
        )
        pad_id = tokenizer.pad_token_id

        score = scorer(cfg.task)

        def evaluate(m) -> dict:
            return score(
                m,
                feats["validation"],
                data.labels,
                cfg.eval.batch_size,
                pad_id,
                split=data.splits["validation"],
            )

        base = {}
        if not resume:  # what fine-tuning starts from, on the same splits
            from tunelab.evaluation.baselines.base_model import base_scores

            base = base_scores(model, task, feats, data, cfg, tokenizer, score)

        procedure = build_procedure(ProcedureContext(cfg, task, data, feats, tokenizer, model))
        if forgetting is not None:  # the earlier task's held-out file, on the starting model
            forgetting.start(model, tokenizer, cfg.data.max_length, score)
        es = cfg.train.early_stopping
        settings = LoopSettings(
            lr=cfg.train.lr,
            epochs=cfg.train.epochs or 1.0,
            metric=es.metric,
            mode=es.mode,
            pad_id=pad_id,
            class_weights=None if weights is None else torch.as_tensor(weights),
            procedure=procedure,
            on_eval=on_eval,
            collate=task.collate,
            trackers=trackers,
        )
        loop = train_loop(
            model, feats["train"], cfg.train, settings, run_dir, task.loss, evaluate, resume=resume
        )

        peak.stop()
        results: dict[str, Any] = {}
        t0 = time.perf_counter()
        for name in ("validation", "test"):
            if name in feats:
                results[name] = score(
                    model,
                    feats[name],
                    data.labels,
                    cfg.eval.batch_size,
                    pad_id,
                    split=data.splits[name],
                )
        last = "test" if "test" in feats else "validation"
        results[last].update(split_samples(model, task, data.splits[last], tokenizer, cfg))
        eval_seconds = time.perf_counter() - t0

        columns = {"text": cfg.data.text, "text_pair": cfg.data.text_pair, "label": cfg.data.label}
        meta = ModelMeta(
            task=cfg.task,
            labels=data.labels.to_dict() if data.labels else None,
            max_length=cfg.data.max_length,
            columns=columns,
            base_model=cfg.model,
            method=cfg.method.name,
            packing=cfg.data.packing,
            generation=cfg.generation.model_dump(),
            tunelab_version=cfg.versions["tunelab"],
        )
        if task.model_meta is not None:  # the task's own reading settings (columns, windows)
            meta = meta.updated(**task.model_meta(cfg, meta))
        _save_model(run_dir, model, tokenizer, method, cfg, meta)

        baselines, baseline_seconds = {}, {}
        if task.baselines is not None:  # the task's own no-training baselines
            t_base = time.perf_counter()
            baselines = task.baselines(data, cfg)
            baseline_seconds = {"all": round(time.perf_counter() - t_base, 3)}
        elif task.head_kind == "sequence":  # majority, TF-IDF, frozen embeddings
            from tunelab.evaluation.baselines.run import run_baselines

            baselines, baseline_seconds = run_baselines(cfg, data, source, tokenizer)
        elif task.head_kind == "token" and cfg.eval.baselines:  # a lexicon of training entities
            from tunelab.evaluation.scoring.entities import lexicon_baseline

            evals = {n: s for n, s in data.splits.items() if n in ("validation", "test")}
            baselines["lexicon"] = lexicon_baseline(data.splits["train"], evals, data.labels)
        baselines.update(base)
        timing = run_timing(
            loop, eval_seconds=eval_seconds, started=t_start, baseline_seconds=baseline_seconds
        )
        info = run_info(
            cfg,
            loop,
            task=cfg.task,
            procedure=procedure,
            trainable=trainable,
            total=total,
            saved_mb=_weights_mb(run_dir / "model"),
            adapter_mb=_weights_mb(run_dir / "adapter"),
            rows={name: len(split) for name, split in data.splits.items()},
            validation_from_train=data.validation_from_train,
            labels=data.labels.names if data.labels else None,
            class_weights=None if weights is None else [float(w) for w in weights],
            defaults_chosen=chosen,
        )
        distill = None
        if cfg.procedure.name == "distill":  # teacher vs student: metric, size, CPU latency
            from tunelab.evaluation.run_report.distill import distill_report, format_table

            distill = distill_report(
                procedure.teacher.model,
                model,
                teacher_folder=procedure.teacher.folder,
                student_folder=run_dir / "model",
                student_scores=results[last],
                score_teacher=lambda m: score(
                    m,
                    feats[last],
                    data.labels,
                    cfg.eval.batch_size,
                    pad_id,
                    split=data.splits[last],
                ),
                features=feats[last],
                split_name=last,
                metric=es.metric,
                pad_id=pad_id,
                collate=task.collate,
            )
            print(format_table(distill))
        result = build_result(
            results,
            timing=timing,
            run=info,
            baselines=baselines,
            distill=distill,
            forgetting=None if forgetting is None else forgetting.finish(model),
            plan=None if plan is None else plan_record(plan, peak.mib),
        )
        written = write_run_result(run_dir, result)
        trackers.finish(written)
        _write_figures(run_dir, result, written, cfg)
        return written


def _weights_mb(folder: Path) -> float | None:
    """Size on disk of a saved model folder's weights (MiB); None when there is no folder."""
    if not folder.is_dir():
        return None
    return round(sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 2**20, 3)


def _save_model(run_dir: Path, model, tokenizer, method, cfg: RunConfig, meta: ModelMeta) -> None:
    """model/ (and adapter/ when LoRA is merged), each written to a temp folder then renamed."""

    def finish(folder: Path, merged: bool) -> None:
        tokenizer.save_pretrained(folder)
        write_model_meta(folder, meta.updated(merged=merged))

    if hasattr(method, "save_adapter") and cfg.method.merges:
        with atomic_dir(run_dir / "adapter") as tmp:
            method.save_adapter(model, tmp)
            finish(tmp, False)
    with atomic_dir(run_dir / "model") as tmp:
        method.save(model, tmp, cfg.method)
        finish(tmp, cfg.method.merges)


def _write_figures(run_dir: Path, result: RunResult, results: dict, cfg: RunConfig) -> None:
    split = result.last_split
    cm = (getattr(result, split) or {}).get("confusion_matrix")
    if cm:
        plot_confusion_matrix(
            cm,
            result.run.labels,
            run_dir / "confusion_matrix.png",
            title=f"{split} confusion matrix",
        )
    write_report(
        run_dir,
        results,
        read_metrics(run_dir),
        title=f"tunelab run: {cfg.model} / {cfg.method.name} / {cfg.task}",
    )
