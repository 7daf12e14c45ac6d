"""`tunelab plan --measure`: 3 real optimizer steps on the run's largest micro-batch, so
the plan shows its own error.

Peak memory is what the steps add to the process: on CUDA `max_memory_allocated` (plus
the runtime the estimate counts), on CPU the resident set size, sampled every millisecond
by a thread and checked against the kernel's high-water mark (`ru_maxrss`, exact when the
steps set a new high), minus the RSS before the model loaded. Step time is the median of
steps 2 and 3 (step 1 allocates the optimizer state and warms the kernels).
"""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import threading
import time

import numpy as np

from tunelab.models.planner.estimate import CUDA_RUNTIME_MIB, MIB

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * PAGE


class PeakRSS:
    """Highest RSS while the block runs, sampled every `every` seconds (and ru_maxrss)."""

    def __init__(self, every: float = 0.001):
        self.every, self.peak, self._stop = every, 0, threading.Event()

    def __enter__(self) -> PeakRSS:
        self.start = rss_bytes()
        self.max_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.peak = self.start
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.every)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())
        high = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        if high > self.max_before:  # the steps set a new high: the kernel's figure is exact
            self.peak = max(self.peak, high)


class PeakMemory:
    """A run's peak memory above where it started: CUDA's allocator peak on a GPU, the RSS
    (sampled every 10 ms, and ru_maxrss) on CPU. `start()`, then `stop()`, then `.mib`."""

    def __init__(self) -> None:
        self.mib: float | None = None

    def start(self) -> PeakMemory:
        import torch

        self.cuda = torch.cuda.is_available()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.rss = PeakRSS(every=0.01).__enter__()
        return self

    def stop(self) -> float:
        import torch

        if self.cuda:
            peak = torch.cuda.max_memory_allocated() - self.base
            self.mib = round(peak / MIB + CUDA_RUNTIME_MIB, 1)
        else:
            self.rss.__exit__(None, None, None)
            self.mib = round((self.rss.peak - self.rss.start) / MIB, 1)
        return self.mib


def _peak_index(lengths: np.ndarray, rows: int) -> np.ndarray:
    """The `rows` longest rows: the micro-batch the estimate's peak is for."""
    return np.argsort(-lengths, kind="stable")[:rows]


def measure(ctx, plan: dict, steps: int = 3) -> dict:
    """Load the model, apply the method, run `steps` optimizer steps; measured peak and time."""
    import torch

    from tunelab.methods import get_method
    from tunelab.models.loading import load_options
    from tunelab.training.optim import build_optimizer
    from tunelab.training.procedures import Procedure

    cfg, task = ctx.cfg, ctx.task
    if ctx.device.planned:
        from tunelab.errors import TunelabError

        raise TunelabError("--measure: runs on this machine; drop --device to measure here")
    cuda = ctx.device.kind == "cuda"
    dev = torch.device("cuda" if cuda else "cpu")
    method = get_method(cfg.method.name)
    rows, _ = plan["estimate"]["peak_batch"]
    index = _peak_index(ctx.features.lengths, rows)
    pad_id = ctx.tokenizer.pad_token_id
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(ctx.spec.precision)
    autocast = (
        torch.autocast(dev.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    )
    loss_of = Procedure().loss
    source = ctx.source
    if source.kind == "gguf":  # the converted safetensors (once, then cached)
        from tunelab.models.sources import resolve_model

        source = resolve_model(cfg.model)
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated()
    times = []
    with PeakRSS() as rss:
        with load_options(**getattr(method, "load_options", lambda c: {})(cfg.method)):
            model = task.load_model(source, ctx.data, cfg, ctx.tokenizer)
        model = method.apply(model, cfg.method, cfg.task, head=task.head_modules(model))
        if ctx.spec.checkpointing:
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
        model.to(dev)
        model.train()
        optimizer = build_optimizer(model, cfg.train, cfg.train.lr or 1e-4)
        for _ in range(steps):
            t0 = time.perf_counter()
            for _micro in range(ctx.spec.grad_accum):
                batch = {k: v.to(dev) for k, v in task.collate(ctx.features, index, pad_id).items()}
                labels = batch.pop("labels")
                with autocast:
                    loss = loss_of(model, batch, labels, task.loss, None, index)
                (loss / ctx.spec.grad_accum).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    if cuda:
        peak = (torch.cuda.max_memory_allocated() - base_cuda) / MIB + CUDA_RUNTIME_MIB
    else:
        peak = (rss.peak - rss.start) / MIB
    del model, optimizer
    step_s = statistics.median(times[1:]) if len(times) > 1 else times[0]
    est = plan["estimate"]
    return {
        "peak_mib": round(peak, 1),
        "step_s": round(step_s, 4),
        "steps": steps,
        "step_times_s": [round(t, 4) for t in times],
        "peak_error": round(est["peak_mib"] / peak - 1, 4) if peak > 0 else None,
        "step_error": round(est["step_s"] / step_s - 1, 4) if step_s > 0 else None,
    }
