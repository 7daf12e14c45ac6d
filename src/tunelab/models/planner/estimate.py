"""Peak memory and step time of a training run, from the model's shape, the method, the
batches the data makes and the machine's measured speed. No weights load.

Memory (bytes) is counted the way PyTorch holds it during a step:
- weights: every base parameter in fp32 (mixed precision keeps fp32 master weights; QLoRA
  holds the blocks' linears in 4-bit NF4 and the rest in bf16), plus what the method adds;
- gradients and AdamW state (two fp32 moments) of the trainable parameters only;
- activations autograd saves in the forward pass, per token and block, measured per
  architecture with saved-tensor hooks (tests/models/test_planner.py re-measures them):
  BERT-style blocks 10H + 2I floats (+ 3 per head and key position with attention dropout),
  gated (Llama-style) blocks 7H + 4·kv + 4I; LoRA adds its dropped-out input per wrapped
  linear; frozen blocks below the lowest trained one save nothing; gradient checkpointing
  keeps one H per block plus one block's full set;
- the logits/loss buffer: (B, T, V) fp32 logits, their shifted copy and log-softmax for a
  language-model head (negligible for a classification head).
Peak is not the sum: activations peak at the end of the forward pass (gradients are freed
between steps), gradients at the optimizer step, so peak = weights + optimizer state +
max(activations + logits, gradients + the optimizer's temporaries).

Time: FLOPs (forward 2·N per token for the N multiplied weights, backward 2·N for the
blocks that backpropagate plus 2·N for trained weights, attention 4·T·H per block and token
forward, twice that backward; a recompute with checkpointing) over the probed matmul rate,
plus the memory-bound element-wise passes over the activations at the probed bandwidth,
plus a fixed cost per operator call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tunelab.models.planner.device import Device
from tunelab.models.planner.shape import ModelShape
from tunelab.models.planner.speed import Speed
from tunelab.models.planner.trainable import Trainable, trainable

MIB = 2**20
LOGIT_COPIES = 3  # logits, the shifted fp32 copy the loss reads, log-softmax saved for backward
ELEMENTWISE_PASSES = 4  # activations written forward, read backward, their grads written, read
OPS_PER_BLOCK = 40  # operator calls per block forward (backward: about twice)
CPU_RUNTIME_MIB = 40.0  # allocator slack and oneDNN scratch beyond the tensors (measured)
CUDA_RUNTIME_MIB = 500.0  # CUDA context and cuBLAS workspace, outside PyTorch's allocator
# glibc raises its mmap threshold as large blocks are freed, so a CPU process keeps the
# forward pass's freed temporaries resident: RSS at the peak was 1.74-1.98x the live
# activations on MiniLM (1.0x with MALLOC_MMAP_THRESHOLD_=131072); CUDA's allocator is exact
CPU_ALLOCATOR_FACTOR = 1.8


@dataclass
class Plan:
    """What one run needs. Bytes are MiB, times seconds."""

    method: str
    batch_size: int
    grad_accum: int
    max_length: int
    precision: str
    checkpointing: bool
    packing: bool | None
    weights_mib: float
    gradients_mib: float
    optimizer_mib: float
    activations_mib: float
    logits_mib: float
    runtime_mib: float
    peak_mib: float
    step_s: float  # one optimizer step at the run's largest micro-batches
    mean_step_s: float
    epoch_s: float
    steps_per_epoch: int
    tokens_per_epoch: int
    padded_tokens_per_epoch: int
    trainable_params: int
    total_params: int
    step_tflop: float
    peak_batch: tuple[int, int] = (0, 0)  # (rows, T) of the largest micro-batch
    fits: bool = True
    device_mib: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["peak_batch"] = list(self.peak_batch)
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}


@dataclass
class RunSpec:
    """The settings of a run that the plan depends on (a config's, resolved)."""

    method: object  # a config.method model
    batch_size: int
    grad_accum: int
    max_length: int
    precision: str  # fp32 | bf16 | fp16
    checkpointing: bool = False
    packing: bool | None = None  # causal-lm: several examples per row (4-D mask)
    group_by_length: bool = True
    seed: int = 0


def micro_batches(lengths: np.ndarray, spec: RunSpec) -> list[tuple[int, int]]:
    """(rows, padded length) of each micro-batch of one epoch, grouped by length as the
    loop groups them (shuffled mega-batches of 50 batches, sorted within)."""
    lengths = np.minimum(np.asarray(lengths, dtype=np.int64), spec.max_length)
    if len(lengths) == 0:
        return []
    rng = np.random.default_rng([spec.seed, 0])
    perm = rng.permutation(len(lengths))
    b = spec.batch_size
    if spec.group_by_length:
        mega = b * 50
        chunks = np.array_split(perm, max(1, -(-len(perm) // mega)))
        perm = np.concatenate([c[np.argsort(-lengths[c], kind="stable")] for c in chunks])
    return [
        (len(perm[i : i + b]), int(lengths[perm[i : i + b]].max())) for i in range(0, len(perm), b)
    ]


def _weights_bytes(shape: ModelShape, tr: Trainable, name: str) -> float:
    if name == "qlora":
        body = sum(
            lin.fan_in * lin.fan_out
            for lin in shape.linears
            if not lin.head and lin.layer is not None
        )
        # NF4: 4 bits a weight, fp32 absmax per 64 (double-quantized to ~8 bits) ~ 0.52 B
        return body * 0.52 + (shape.params - body) * 2 + tr.extra_params * 4
    return shape.params * 4 + tr.extra_params * 4


def _act_floats_per_token(shape: ModelShape, tr: Trainable, spec: RunSpec, t: int) -> float:
    """Floats autograd keeps per token of a micro-batch padded to `t`."""
    h, i = shape.hidden, shape.intermediate
    if shape.gated_mlp:
        block = 7 * h + 4 * shape.kv_dim + 4 * i + 3 * shape.head_dim
        if spec.method.name != "full":
            block -= 2 * h  # frozen norms keep no input
    else:
        block = 10 * h + 2 * i
    if shape.attention_dropout > 0:  # probabilities, their dropout mask and output
        block += 3 * shape.heads * t
    elif spec.packing:  # a 4-D mask: the math attention path keeps the probabilities
        block += 2 * shape.heads * t
    lora_drop = getattr(spec.method, "dropout", 0.0) or 0.0
    per_layer_extra: dict[int, float] = {}
    for lin in tr.targets:  # the update's own input (dropped out) and its rank-r middle
        extra = spec.method.r + (1.25 * lin.fan_in if lora_drop > 0 else 0.0)
        per_layer_extra[lin.layer] = per_layer_extra.get(lin.layer, 0.0) + extra
    n = len(tr.grad_layers)
    if n == 0:
        return 2.0 * h  # the head's input only
    if spec.checkpointing:
        worst = max((per_layer_extra.get(j, 0.0) for j in tr.grad_layers), default=0.0)
        return n * h + block + worst + 3 * h
    total = n * block + sum(per_layer_extra.get(j, 0.0) for j in tr.grad_layers)
    embeds = spec.method.name in ("full", "prompt") or getattr(
        spec.method, "train_embeddings", False
    )
    return total + (3 * h if embeds else 0.0) + h  # + the head's input


def _act_bytes_per_float(spec: RunSpec) -> float:
    # under autocast the matmul outputs are 16-bit, norms and softmax stay fp32: about 2.5
    return 4.0 if spec.precision == "fp32" else 2.5


def _logits_bytes(shape: ModelShape, rows: int, t: int) -> float:
    if shape.lm_vocab:
        return LOGIT_COPIES * rows * t * shape.lm_vocab * 4
    return 0.0


def _step_seconds(shape, tr, spec, batches, speed: Speed) -> float:
    """Seconds for the micro-batches of one optimizer step."""
    grad_layers = tr.grad_layers
    fwd_mm = shape.matmul_params()
    bwd_mm = shape.matmul_params(grad_layers) if len(grad_layers) else 0
    bwd_mm += sum(lin.fan_in * lin.fan_out for lin in shape.linears if lin.head)
    lora_mm = sum(spec.method.r * (x.fan_in + x.fan_out) for x in tr.targets)
    flops = elem_bytes = 0.0
    n_ops = 0
    for rows, t in batches:
        tokens = rows * t
        attn = 4 * t * shape.hidden  # QK^T and AV per token and block, forward
        f = 2 * fwd_mm + attn * shape.layers + 2 * lora_mm
        b = 2 * bwd_mm + 2 * attn * len(grad_layers) + 2 * tr.matmul_trainable + 4 * lora_mm
        if spec.checkpointing:
            b += 2 * shape.matmul_params(grad_layers) + attn * len(grad_layers)
        flops += tokens * (f + b)
        act = _act_floats_per_token(shape, tr, spec, t) * _act_bytes_per_float(spec)
        frozen = shape.layers - len(grad_layers)  # forward only: written and read once
        act_fwd_only = frozen * (10 * shape.hidden + 2 * shape.intermediate) * 4 * 2
        elem_bytes += tokens * (ELEMENTWISE_PASSES * act + act_fwd_only)
        elem_bytes += ELEMENTWISE_PASSES * _logits_bytes(shape, rows, t)
        n_ops += OPS_PER_BLOCK * (shape.layers + 2 * len(grad_layers)) + 30
    compute = (
        flops / (speed.gflops * 1e9)
        + elem_bytes / (speed.bandwidth_gbs * 1e9)
        + n_ops * speed.op_us * 1e-6
    )
    return compute, flops


def _optimizer_seconds(tr: Trainable, speed: Speed) -> float:
    """One AdamW step: read p, g, m, v, write p, m, v, and foreach temporaries (~16 passes)."""
    return tr.params * 4 * 16 / (speed.bandwidth_gbs * 1e9) + 20 * speed.op_us * 1e-6


def plan_run(
    shape: ModelShape,
    spec: RunSpec,
    lengths: np.ndarray,
    device: Device,
    speed: Speed,
) -> Plan:
    """The plan of one run: memory breakdown, peak, step and epoch time, whether it fits."""
    tr = trainable(shape, spec.method)
    batches = micro_batches(lengths, spec)
    if not batches:
        batches = [(spec.batch_size, spec.max_length)]
    # the micro-batch that needs the most memory: most padded tokens (attention: T^2)
    peak_rows, peak_t = max(batches, key=lambda rt: (rt[0] * rt[1] * (1 + rt[1] / 4096), rt[1]))
    weights = _weights_bytes(shape, tr, spec.method.name)
    grads = tr.params * 4
    optim = tr.params * 8
    act = (
        peak_rows
        * peak_t
        * _act_floats_per_token(shape, tr, spec, peak_t)
        * _act_bytes_per_float(spec)
    )
    logits = _logits_bytes(shape, peak_rows, peak_t)
    opt_temp = tr.params * 4 * 2  # foreach AdamW's sqrt and update lists
    lm_grad = tr.params * 4 if spec.method.name == "full" and shape.lm_vocab else 0.0
    lm_grad = min(lm_grad, shape.lm_vocab * shape.hidden * 4)  # the head's grad comes first
    runtime = CUDA_RUNTIME_MIB if device.kind == "cuda" else CPU_RUNTIME_MIB
    if device.kind == "cpu":
        act, logits = act * CPU_ALLOCATOR_FACTOR, logits * CPU_ALLOCATOR_FACTOR
    peak = weights + optim + max(act + logits + lm_grad, grads + opt_temp) + runtime * MIB

    accum = spec.grad_accum
    step_batches = [(peak_rows, peak_t)] * accum
    steps = math.ceil(len(batches) / accum)
    optim_s = _optimizer_seconds(tr, speed)
    step_s, step_flops = _step_seconds(shape, tr, spec, step_batches, speed)
    step_s += optim_s
    epoch_s, _ = _step_seconds(shape, tr, spec, batches, speed)
    epoch_s += steps * optim_s
    return Plan(
        method=spec.method.name,
        batch_size=spec.batch_size,
        grad_accum=accum,
        max_length=spec.max_length,
        precision=spec.precision,
        checkpointing=spec.checkpointing,
        packing=spec.packing,
        weights_mib=weights / MIB,
        gradients_mib=grads / MIB,
        optimizer_mib=optim / MIB,
        activations_mib=act / MIB,
        logits_mib=logits / MIB,
        runtime_mib=runtime,
        peak_mib=peak / MIB,
        step_s=step_s,
        mean_step_s=epoch_s / max(1, steps),
        epoch_s=epoch_s,
        steps_per_epoch=steps,
        tokens_per_epoch=int(np.minimum(lengths, spec.max_length).sum()) if len(lengths) else 0,
        padded_tokens_per_epoch=int(sum(r * t for r, t in batches)),
        trainable_params=tr.params,
        total_params=shape.params + tr.extra_params,
        step_tflop=step_flops / 1e12,
        peak_batch=(peak_rows, peak_t),
        fits=peak / MIB <= device.memory_mib * 0.95,
        device_mib=device.memory_mib,
    )
