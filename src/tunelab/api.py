"""The Python API: `train`, `evaluate`, `predict`. The CLI is a thin layer over these.

`train` wires the layers together in the order a run needs them: validate the config, read
and check the data (before any weights load), pick the defaults the config left open, load
the model, apply the method, run the loop, save the model atomically, score it and the
baselines, and write results.json and report.html.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.config import RunConfig, load_config, parse_overrides
from tunelab.config.generation import GenerationConfig
from tunelab.config.load import merge_dicts, validate_config


def _as_config(config: RunConfig | dict | str | Path, overrides: list[str] | None) -> RunConfig:
    if isinstance(config, RunConfig):
        config = config.model_dump(mode="json", exclude_none=False)
    if isinstance(config, dict):
        return validate_config(merge_dicts(config, parse_overrides(overrides or [])))
    return load_config(config, overrides)


def train(
    config: RunConfig | dict | str | Path,
    overrides: list[str] | None = None,
    *,
    overwrite: bool = False,
    resume: bool = False,
    preflight: bool = True,
    time_budget: str | float | None = None,
) -> dict[str, Any]:
    """Fine-tune as the config says; return the results (also written to results.json).
    With `train.folds: k`, k-fold cross-validation: returns what folds.json holds.
    `preflight`: estimate the run's peak memory first and refuse one that will not fit
    (runs/plan.py); False runs it anyway.
    `time_budget` (seconds, or "90s", "10m", "1h"): search method, lr and epochs with Optuna
    (or the config's own `search:` space) within that wall-clock time and make the best
    trial on validation the run in `output:`, with search.json beside it
    (runs/time_budget.py)."""
    from tunelab.runs.train import run_training

    if time_budget is not None:
        from tunelab.runs.time_budget import parse_duration, run_time_budget

        seconds = parse_duration(time_budget)  # a bad value fails before the config loads
        if resume:
            from tunelab.errors import ConfigError

            raise ConfigError("--resume", "cannot be combined with --time-budget")
        cfg = _as_config(config, overrides)
        return run_time_budget(cfg, seconds, overwrite=overwrite, preflight=preflight)
    cfg = _as_config(config, overrides)
    if cfg.train.folds is not None:
        from tunelab.runs.kfold import run_kfold

        return run_kfold(cfg, overwrite=overwrite, resume=resume)
    return run_training(cfg, overwrite=overwrite, resume=resume, preflight=preflight)


def tune(
    config: RunConfig | dict | str | Path,
    overrides: list[str] | None = None,
    *,
    trials: int = 20,
    timeout: float | None = None,
    output: str | Path | None = None,
    overwrite: bool = False,
    verbose: bool = False,
) -> dict[str, Any]:
    """Hyperparameter search over the config's `search:` space (Optuna): up to `trials`
    runs under `output` (default: the config's output), best_config.yaml of the best one.
    Returns what search.json holds."""
    from tunelab.runs.search import run_search

    return run_search(
        _as_config(config, overrides),
        trials,
        timeout=timeout,
        output=output,
        overwrite=overwrite,
        verbose=verbose,
    )


def predict(
    model: str | Path,
    texts: list[str],
    pairs: list[str] | None = None,
    batch_size: int = 64,
    generation: GenerationConfig | dict | None = None,
    **settings,
) -> list[dict]:
    """Per text of `texts`, from a trained model folder (or run folder): labels and scores
    (classification), entities with spans (token classification), the answer span of each
    question (`texts`) in its context (`pairs`) (extractive QA), or `{"generated": text}`
    (seq2seq: the decoded target, greedy unless the run's `generation:` says otherwise;
    `generation` and keyword settings update it as in generation_config)."""
    from tunelab.errors import TunelabError
    from tunelab.methods.loading import load_trained
    from tunelab.tasks import all_tasks, get_task

    trained = load_trained(model)
    task = get_task(trained.task)
    if task.predict_texts is not None:  # the task's own (extractive-qa: text = question)
        return task.predict_texts(trained, texts, pairs, batch_size)
    head = task.head_kind
    if head == "token":
        from tunelab.evaluation.scoring.entities import predict_entities

        return predict_entities(trained, texts)
    if head == "encoder-decoder":
        if pairs is not None:
            raise TunelabError(f"{model}: a '{trained.task}' model takes single texts, no pairs")
        gen = generation_config(model, generation, **settings)
        return [{"generated": t} for t in _seq2seq_outputs(trained, texts, gen, batch_size)]
    if head != "sequence":
        labelling = [t.name for t in all_tasks() if t.labelled]
        raise TunelabError(
            f"{model}: a '{trained.task}' model does not label texts; use it as `model:` of a "
            f"{' or '.join(labelling)} run"
            + (
                "; `tunelab generate` completes prompts with it"
                if get_task(trained.task).generates
                else ""
            )
        )
    from tunelab.inference.forward import predict_texts

    return predict_texts(trained, texts, pairs, batch_size)


def _seq2seq_outputs(trained, texts: list[str], gen: GenerationConfig, batch_size: int = 16):
    """Decoded outputs of a seq2seq TrainedModel for source `texts`, as `tunelab eval`
    decodes them (the run's source prefix and length limit)."""
    from tunelab.evaluation.scoring.seq2seq import generate_texts

    return generate_texts(
        trained.model,
        trained.tokenizer,
        list(texts),
        generation=gen,
        prefix=trained.meta.columns.get("prefix") or "",
        max_length=trained.max_length,
        batch_size=batch_size,
    )


def _encoder_decoder(model: str | Path):
    """The TrainedModel of a seq2seq run / model folder or of a plain encoder-decoder folder,
    else None (nothing loaded: the caller loads it as a causal LM)."""
    from tunelab.methods.any_model import head_task, is_tunelab_folder, load_base_model
    from tunelab.methods.loading import load_trained, read_meta
    from tunelab.models.sources import resolve_model
    from tunelab.tasks import get_task

    if is_tunelab_folder(model):
        task = read_meta(model).task
        if get_task(task).head_kind == "encoder-decoder":
            return load_trained(model)
        return None
    if not (Path(model) / "config.json").is_file():  # aliases, .gguf files, hub ids
        return None
    source = resolve_model(str(model))
    task, _ = head_task(source)
    if task is not None and get_task(task).head_kind == "encoder-decoder":
        return load_base_model(source, task)
    return None


def evaluate(
    model: str | Path,
    data: str | Path,
    *,
    text: str | None = None,
    text_pair: str | None = None,
    label: str | None = None,
    split: str = "test",
    batch_size: int = 64,
) -> dict[str, Any]:
    """`{split: metrics}` of a trained model on a labelled file (columns default to training's)."""
    from tunelab.evaluation.score_file import evaluate_file
    from tunelab.methods.loading import load_trained

    trained = load_trained(model)
    return {
        split: evaluate_file(
            trained, data, text=text, text_pair=text_pair, label=label, batch_size=batch_size
        )
    }


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
    **options,
) -> dict[str, Any]:
    """The `tunelab eval` report: `model` (run folder, model folder or base model) and each of
    `compare` on a labelled file, metrics with bootstrap intervals, paired tests against the
    first model, slices by the `group` column, training diagnosis of runs. Writes
    OUTPUT/report.json and OUTPUT/report.html (default OUTPUT: <run>/eval-<data stem>/ or
    ./eval-<data stem>/) and returns report.json's content. `options`: batch_size, text,
    text_pair, label, generate_rows, generation, min_slice_rows, write (see
    evaluation/eval_report.evaluate_report)."""
    from tunelab.evaluation.report.build import evaluate_report as run_report

    return run_report(
        model,
        data,
        compare=compare,
        names=names,
        group=group,
        output=output,
        bootstrap=bootstrap,
        seed=seed,
        **options,
    )


def robustness(
    model: str | Path,
    data: str | Path,
    *,
    attacks: list[str] | None = None,
    rows: int | None = None,
    seed: int = 0,
    text: str | None = None,
    text_pair: str | None = None,
    label: str | None = None,
    batch_size: int = 64,
    **settings,
) -> dict[str, Any]:
    """Accuracy of a trained classifier under typo / synonym / word-drop / greedy synonym
    attacks on the first `rows` rows of a labelled file (see evaluation/robustness/attack.py);
    `settings`: rate, budget, candidates."""
    from tunelab.evaluation.robustness.attack import robustness_file
    from tunelab.methods.loading import load_trained

    if not Path(data).exists():
        from tunelab.errors import DataError

        raise DataError(str(data), "no such file")
    trained = load_trained(model)
    return robustness_file(
        trained,
        data,
        attacks=attacks,
        rows=rows,
        seed=seed,
        text=text,
        text_pair=text_pair,
        label=label,
        batch_size=batch_size,
        **settings,
    )


def load_causal_lm(model: str | Path):
    """(model, tokenizer) of a causal LM: a tunelab causal-lm run/model folder, or any
    loadable model (packaged alias, HF folder, .gguf, hub id); anything else is refused."""
    from tunelab.methods.any_model import load_causal_lm as load

    return load(model)


def generation_config(
    model: str | Path | None = None, generation: GenerationConfig | dict | None = None, **settings
) -> GenerationConfig:
    """The generation settings: a tunelab run's own `generation:` section (when `model` is one),
    updated by `generation` and by keyword settings that are not None; validated, with errors
    naming `generation.<field>`."""
    from pydantic import ValidationError

    from tunelab.config.validation import format_validation_error
    from tunelab.methods.loading import read_meta

    base = {}
    if model is not None and Path(model).exists():
        meta = read_meta(model)
        base = dict((meta.generation if meta else None) or {})
    if isinstance(generation, GenerationConfig):
        generation = generation.model_dump(exclude_unset=True)
    merged = {**base, **(generation or {}), **{k: v for k, v in settings.items() if v is not None}}
    try:
        return GenerationConfig(**merged)
    except ValidationError as exc:
        raise format_validation_error(exc, "generation") from None


def generate(
    model: str | Path,
    prompts: list[str] | list[list[dict]],
    generation: GenerationConfig | dict | None = None,
    **settings,
) -> list[str]:
    """Completions from a causal LM (see load_causal_lm), chat-templated; stops at the end of
    the model's turn or a stop string. Settings as in generation_config, e.g.
    `generate("runs/chat-sft", ["Hi"], max_new_tokens=64, temperature=0.7, stop=["\n\n"])`.
    A seq2seq model (run or encoder-decoder folder) gives its decoded output per prompt, as
    `predict` does."""
    from tunelab.inference.generation import complete

    gen = generation_config(model, generation, **settings)
    seq2seq = _encoder_decoder(model)
    if seq2seq is not None:
        if any(not isinstance(p, str) for p in prompts):
            from tunelab.errors import TunelabError

            raise TunelabError(f"{model}: a seq2seq model takes text prompts, not conversations")
        return _seq2seq_outputs(seq2seq, prompts, gen)
    lm, tokenizer = load_causal_lm(model)
    return [c["text"] for c in complete(lm, tokenizer, prompts, gen)]


def explain(model: str | Path, texts: list[str], **options) -> dict[str, Any]:
    """Token attributions of `texts` (IG, gradient x input, occlusion; see
    interpret/explain.py for the options: pairs, methods, target, word, compare, attention,
    output, ig_steps, ...); with `output`, writes explain.html + explain.json there."""
    from tunelab.interpret.explain import explain as run

    return run(model, texts, **options)


def global_importance(model: str | Path, data: str | Path, **options) -> dict[str, Any]:
    """Per class, the words that push a classifier toward it over a sample of `data` (see
    interpret/global_importance.py: rows, top, min_count, method, output, ...)."""
    from tunelab.interpret.global_importance import global_importance as run

    return run(model, data, **options)


def export(
    run: str | Path,
    formats: str | list[str],
    *,
    output: str | Path | None = None,
    quant: str = "f16",
    overwrite: bool = False,
    rows: int | None = 64,
    threads: int = 1,
) -> dict[str, Any]:
    """Export a trained run as merged safetensors, adapter only, ONNX, int8 ONNX or GGUF
    (`formats`: a name, a comma list or a list), each loaded back and checked against the run
    on held-out rows; returns {format: export.json}. See docs/export.md."""
    from tunelab.export import export_run

    return export_run(
        run, formats, output=output, quant=quant, overwrite=overwrite, rows=rows, threads=threads
    )
