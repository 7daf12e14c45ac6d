"""Changes that make a run fit or go faster, each with its own new estimate.

Tried in the order a practitioner would: a cheaper method, gradient checkpointing, a
smaller micro-batch with more accumulation (the same effective batch), a shorter
max_length (the data's 95th percentile), packing. A change is offered when it fits where
the run does not, or cuts the epoch time by a fifth where the run is slow.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tunelab.config.method import switch_method
from tunelab.models.planner.device import Device
from tunelab.models.planner.estimate import Plan, RunSpec, plan_run
from tunelab.models.planner.shape import ModelShape
from tunelab.models.planner.speed import Speed

CHECKPOINTING_KEY = False  # no train.gradient_checkpointing key in the config yet
SLOW_EPOCH_S = 900.0  # an epoch longer than this is "slow": faster options are shown


def _packed(lengths: np.ndarray, max_length: int) -> np.ndarray:
    """Rows of max_length tokens holding the same tokens end to end."""
    total = int(np.minimum(lengths, max_length).sum())
    rows = max(1, -(-total // max_length))
    out = np.full(rows, max_length, dtype=np.int64)
    out[-1] = total - max_length * (rows - 1) or max_length
    return out


def _candidates(shape: ModelShape, spec: RunSpec, lengths, raw_lengths, device: Device):
    """(change, why, spec, lengths) for each change worth estimating."""
    name = spec.method.name
    if name in ("full", "freeze"):
        lora = switch_method(spec.method, "lora")
        yield (
            "method.name=lora",
            "trains ~1% of the weights: no gradients or optimizer state for the rest",
            replace(spec, method=lora),
            lengths,
        )
    if device.kind == "cuda" and name in ("full", "freeze", "lora", "dora"):
        q = switch_method(spec.method, "qlora")
        yield "method.name=qlora", "the frozen base held in 4-bit", replace(spec, method=q), lengths
    # gradient checkpointing is estimated (RunSpec.checkpointing) but not offered until the
    # loop has a config key that turns it on
    if CHECKPOINTING_KEY and not spec.checkpointing and shape.layers > 1:
        yield (
            "train.gradient_checkpointing=true",
            "keeps one tensor per layer, recomputes the rest (about +30% time)",
            replace(spec, checkpointing=True),
            lengths,
        )
    b, a = spec.batch_size, spec.grad_accum
    while b > 1:
        b, a = max(1, b // 2), a * 2
        yield (
            f"train.batch_size={b} train.grad_accum={a}",
            f"same effective batch ({b * a}), smaller activations",
            replace(spec, batch_size=b, grad_accum=a),
            lengths,
        )
    if len(raw_lengths):
        p95 = int(np.percentile(raw_lengths, 95))
        p95 = max(16, -(-p95 // 8) * 8)
        if p95 < spec.max_length:
            cut = float((raw_lengths > p95).mean())
            new = replace(spec, max_length=p95)
            lens = np.minimum(lengths, p95) if not spec.packing else _packed(lengths, p95)
            yield (
                f"data.max_length={p95}",
                f"the 95th percentile of the data; {cut:.1%} of rows cut",
                new,
                lens,
            )
    if spec.packing is False:
        yield (
            "data.packing=true",
            "several examples per row: no padding",
            replace(spec, packing=True),
            _packed(lengths, spec.max_length),
        )


def recommendations(
    shape: ModelShape,
    spec: RunSpec,
    lengths: np.ndarray,
    raw_lengths: np.ndarray,
    device: Device,
    speed: Speed,
    base: Plan,
) -> list[dict]:
    """Each useful change: `change` (key=value overrides), `why`, and its estimate."""
    slow = base.epoch_s > SLOW_EPOCH_S
    if base.fits and not slow:
        return []
    out, batch_fit = [], False
    for change, why, new, lens in _candidates(shape, spec, lengths, raw_lengths, device):
        if change.startswith("train.batch_size") and (batch_fit or base.fits):
            continue  # one batch split is enough: the first that fits
        p = plan_run(shape, new, lens, device, speed)
        helps_memory = not base.fits and p.peak_mib < base.peak_mib * 0.97
        helps_time = slow and p.epoch_s < base.epoch_s * 0.8 and (p.fits or not base.fits)
        if not (helps_memory or helps_time):
            continue
        if change.startswith("train.batch_size"):
            batch_fit = p.fits
            if not p.fits and new.batch_size > 1:
                continue  # keep halving; offer the first split that fits (or batch 1)
        out.append(
            {
                "change": change,
                "why": why,
                "peak_mib": round(p.peak_mib, 1),
                "step_s": round(p.step_s, 4),
                "epoch_s": round(p.epoch_s, 2),
                "fits": p.fits,
            }
        )
    out.sort(key=lambda r: (not r["fits"], r["epoch_s"]))
    return out
