"""`tunelab plan` and train's preflight: what a run will need, before any weights load.

Reads the config, the data (the real token lengths of the training split, tokenized as the
run will tokenize them) and the model's config.json; asks models/planner for the memory and
time of the configured run and of the changes that would make it fit or go faster;
`measure=True` then runs 3 real optimizer steps on the run's largest micro-batch and
records the measured peak memory and step time beside the estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.config import RunConfig
from tunelab.config.tasks import task_rules
from tunelab.errors import TunelabError
from tunelab.methods import fit
from tunelab.models.loading import load_config, load_tokenizer
from tunelab.models.planner.device import Device, parse_device
from tunelab.models.planner.estimate import RunSpec, plan_run
from tunelab.models.planner.recommend import recommendations
from tunelab.models.planner.shape import shape_from_config
from tunelab.models.planner.speed import machine_speed
from tunelab.models.sources import resolve_model
from tunelab.runs.settings import choose_max_length, prepared
from tunelab.tasks import get_task
from tunelab.training.cpu_precision import cpu_precision


class PlanRefused(TunelabError):
    """Preflight: the run will not fit the device. The message holds the recommendations."""

    exit_code = 3


@dataclass
class PlanContext:
    """What a plan was made from; --measure reuses it to run real steps."""

    cfg: RunConfig
    task: Any
    data: Any
    source: Any
    tokenizer: Any
    features: Any  # the training split featurized at the run's max_length
    spec: RunSpec
    device: Device


def resolved_precision(precision: str, device: Device) -> str:
    if precision != "auto":
        return precision
    if device.kind != "cuda":  # this CPU: the training loop's own verdict; a planned one: fp32
        return "bf16" if not device.planned and cpu_precision().bf16 else "fp32"
    if device.planned:
        return "bf16"
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def _check_method(cfg: RunConfig, model_config, device: Device) -> None:
    """The method must adapt this model; a GPU-only method is fine when planning for a GPU."""
    why = fit.refusal(cfg.method, cfg.task, model_config)
    if why is None or (device.kind == "cuda" and ("GPU" in why or "CUDA" in why)):
        return
    fit.check(cfg.method, cfg.task, model_config)


def plan_context(cfg: RunConfig, device: Device | str | None = None) -> PlanContext:
    """Read the data and the model's config (no weights) and resolve what the plan needs."""
    device = device if isinstance(device, Device) else parse_device(device)
    task = get_task(cfg.task)
    cfg = prepared(cfg)
    data = task.load_data(cfg)
    source = resolve_model(cfg.model, convert_gguf=False)
    from tunelab.models.planner.shape import read_config

    model_config = (
        read_config(source.path, source.gguf_file) if source.kind == "gguf" else load_config(source)
    )
    _check_method(cfg, model_config, device)
    tokenizer = _tokenizer(source)
    train = data.splits["train"]
    lengths = task.featurize(train, tokenizer, None).lengths
    cfg, _ = choose_max_length(cfg, task, lengths, tokenizer, model_config)
    feats = task.featurize(train, tokenizer, cfg.data.max_length)
    packs = task_rules(cfg.task).packs
    spec = RunSpec(
        method=cfg.method,
        batch_size=cfg.train.batch_size,
        grad_accum=cfg.train.grad_accum,
        max_length=cfg.data.max_length,
        precision=resolved_precision(cfg.train.precision, device),
        checkpointing=bool(getattr(cfg.train, "gradient_checkpointing", False)),
        packing=bool(cfg.data.packing) if packs else None,
        group_by_length=cfg.train.group_by_length,
        seed=cfg.train.seed,
    )
    ctx = PlanContext(cfg, task, data, source, tokenizer, feats, spec, device)
    ctx.model_config = model_config  # type: ignore[attr-defined]
    ctx.raw_lengths = np.asarray(lengths)  # type: ignore[attr-defined]
    return ctx


def _tokenizer(source):
    if source.kind != "gguf" or (Path(source.path) / "tokenizer.json").is_file():
        return load_tokenizer(source)
    from transformers import AutoTokenizer

    from tunelab.models.quiet import quiet_transformers
    from tunelab.models.tokenizers import fix_special_tokens

    with quiet_transformers():  # the tokenizer reads from the .gguf without dequantizing
        tok = AutoTokenizer.from_pretrained(
            str(source.gguf_file.parent), gguf_file=source.gguf_file.name
        )
    return fix_special_tokens(tok) or tok


def make_plan(cfg: RunConfig, device: Device | str | None = None, *, recommend: bool = True):
    """The plan of a run as a dict: `estimate` (memory breakdown, peak, step and epoch
    time), `fits`, `device`, `speed`, `recommendations`; and the context for --measure."""
    ctx = plan_context(cfg, device)
    num_labels = len(ctx.data.labels.names) if getattr(ctx.data, "labels", None) else 2
    shape = shape_from_config(ctx.model_config, ctx.cfg.task, num_labels)
    lengths = ctx.features.lengths
    tokens = ctx.spec.batch_size * int(lengths.max() if len(lengths) else ctx.spec.max_length)
    speed = machine_speed(
        ctx.device, tokens, shape.hidden, shape.intermediate, _probe_dtype(ctx.spec)
    )
    est = plan_run(shape, ctx.spec, lengths, ctx.device, speed)
    recs = []
    if recommend:
        recs = recommendations(shape, ctx.spec, lengths, ctx.raw_lengths, ctx.device, speed, est)
    out = {
        "model": ctx.cfg.model,
        "task": ctx.cfg.task,
        "model_type": shape.model_type,
        "device": ctx.device.to_dict(),
        "speed": speed.to_dict(),
        "data": {
            "rows": int(len(ctx.raw_lengths)),
            "length_p50": _pct(ctx.raw_lengths, 50),
            "length_p95": _pct(ctx.raw_lengths, 95),
            "length_max": int(ctx.raw_lengths.max()) if len(ctx.raw_lengths) else 0,
            "max_length": ctx.spec.max_length,
            "rows_after_packing": int(len(lengths)),
        },
        "estimate": est.to_dict(),
        "fits": est.fits,
        "recommendations": recs,
    }
    epochs = ctx.cfg.train.epochs
    if epochs:
        out["estimate"]["run_s"] = round(est.epoch_s * epochs, 2)
    return out, ctx


def _pct(x: np.ndarray, q: float) -> int:
    return int(np.percentile(x, q)) if len(x) else 0


def _probe_dtype(spec: RunSpec) -> str:
    return "fp32" if spec.precision == "fp32" else spec.precision


def preflight(cfg: RunConfig) -> dict:
    """Train's check before loading: the plan, or PlanRefused when the run will not fit."""
    plan, _ = make_plan(cfg)
    if not plan["fits"]:
        raise PlanRefused(refusal_message(plan))
    return plan


def run_preflight(cfg: RunConfig) -> dict | None:
    """Train's preflight: the plan (printed in one line), PlanRefused when it will not fit,
    None (with a warning) when the planner cannot estimate this run."""
    try:
        plan = preflight(cfg)
    except PlanRefused:
        raise
    except Exception as exc:  # the planner must never be why a run that would work fails
        print(f"preflight: no estimate ({type(exc).__name__}: {str(exc).splitlines()[0]})")
        return None
    e = plan["estimate"]
    print(
        f"preflight: peak about {e['peak_mib']:,.0f} MiB of {plan['device']['memory_mib']:,.0f}"
        f" ({plan['device']['kind']}), about {e['epoch_s']:,.0f}s an epoch"
    )
    return plan


def plan_record(plan: dict, measured_mib: float | None) -> dict:
    """What results.json keeps of the preflight: the estimate beside the measured peak."""
    e = plan["estimate"]
    out = {
        "device": plan["device"],
        "estimate_peak_mib": e["peak_mib"],
        "estimate_epoch_s": e["epoch_s"],
        "estimate": e,
        "measured_peak_mib": measured_mib,
    }
    if measured_mib:
        out["peak_error"] = round(e["peak_mib"] / measured_mib - 1, 4)
    return out


def refusal_message(plan: dict) -> str:
    e, d = plan["estimate"], plan["device"]
    lines = [
        f"preflight: this run needs about {e['peak_mib']:,.0f} MiB at its peak "
        f"(weights {e['weights_mib']:,.0f}, gradients {e['gradients_mib']:,.0f}, optimizer "
        f"{e['optimizer_mib']:,.0f}, activations {e['activations_mib']:,.0f}, logits "
        f"{e['logits_mib']:,.0f}) but the {d['kind']} has {d['memory_mib']:,.0f} MiB; "
        "changes that would fit:"
    ]
    fitting = [r for r in plan["recommendations"] if r["fits"]] or plan["recommendations"]
    for r in fitting[:5]:
        lines.append(
            f"  {r['change']:44s} peak {r['peak_mib']:,.0f} MiB, epoch {r['epoch_s']:,.0f}s  ({r['why']})"
        )
    if not plan["recommendations"]:
        lines.append("  (none found: a smaller model, or a machine with more memory)")
    lines.append("run anyway with --no-preflight")
    return "\n".join(lines)
