"""What a run decides before training: the settings its config left open (learning rate,
epochs, max_length, the selection metric), with the reason for each, and the data stage
(`data.prepare`, markup cleaning) whose splits the run reads. Shared by every kind of run
(train, multitask, kfold), so none of them imports another's internals.
"""

from __future__ import annotations

import platform

from tunelab.config import RunConfig, updated
from tunelab.config.tasks import task_rules
from tunelab.data import markup
from tunelab.data.prepare import prepare
from tunelab.metrics.classification import primary_metric_mode
from tunelab.models import lengths as model_lengths
from tunelab.training import defaults


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    import tunelab

    out = {"tunelab": tunelab.__version__, "python": platform.python_version()}
    for name in ("torch", "transformers", "peft", "accelerate", "scikit-learn"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def choose_max_length(
    cfg: RunConfig, task, lengths, tokenizer, model_config
) -> tuple[RunConfig, dict]:
    """data.max_length when the config left it open; a task may choose its own way (mlm blocks)."""
    if cfg.data.max_length is not None:
        return cfg, {}
    choose = task.choose_max_length
    value, why = choose(lengths, model_lengths.model_max_length(tokenizer, model_config))
    chosen = {"data.max_length": {"value": value, "why": why}}
    return updated(cfg, **{"data.max_length": value}), chosen


def choose_settings(cfg: RunConfig, task, n_train: int) -> tuple[RunConfig, dict]:
    """Fill the training settings the config left open; return the resolved config and reasons.
    `n_train` counts training examples as the model sees them (rows; blocks for mlm)."""
    chosen: dict[str, dict] = {}
    train = cfg.train.model_copy()
    if train.lr is None:
        train.lr, why = defaults.choose_lr(cfg.method.name)
        chosen["train.lr"] = {"value": train.lr, "why": why}
    if train.epochs is None and train.max_steps is None:
        train.epochs, why = defaults.choose_epochs(n_train, train.batch_size, train.grad_accum)
        chosen["train.epochs"] = {"value": train.epochs, "why": why}
    es = train.early_stopping.model_copy()
    if es.metric is None:
        es.metric = task.default_metric
        chosen["train.early_stopping.metric"] = {"value": es.metric, "why": task.default_metric_why}
    if es.mode is None:
        es.mode = primary_metric_mode(es.metric)
    train.early_stopping = es
    resolved = updated(cfg, train=train, versions=library_versions())
    return resolved, chosen


def markup_stage(cfg: RunConfig) -> RunConfig:
    """Without `data.prepare:`, `data.clean_markup` (auto: when the text has markup) makes a
    prepare stage that only strips HTML tags and entities; the auto choice is printed like
    the other defaults. Afterwards clean_markup is false: the splits read are clean."""
    stage, chosen = markup.markup_stage(cfg.data, "clean_markup" in task_rules(cfg.task).data_keys)
    for key, c in chosen.items():
        print(f"default {key} = {c['value']}  ({c['why']})")
    if stage is None:
        return cfg
    # not updated(): the data rules refuse clean_markup beside prepare in a config (which
    # would clean twice); here prepare is the very stage clean_markup asked for
    data = cfg.data.model_copy(update={"prepare": stage, "clean_markup": False})
    return cfg.model_copy(update={"data": data})


def prepared(cfg: RunConfig) -> RunConfig:
    """With `data.prepare:` (or markup to clean, `markup_stage`), run (or reuse) the prepare
    stage and read its splits instead."""
    cfg = markup_stage(cfg)
    if cfg.data.prepare is None:
        return cfg
    result = prepare(cfg.data, cfg.output)
    files = {
        split: str(result.files.get(split)) if split in result.files else None
        for split in ("train", "validation", "test")
    }
    changes = {f"data.{split}": file for split, file in files.items()}
    changes["data.prepare"] = None
    if result.class_weights and cfg.train.class_weights == "auto":
        changes["train.class_weights"] = "balanced"
    return updated(cfg, **changes)
