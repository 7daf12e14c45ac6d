"""Whether `train.precision: auto` trains under bf16 autocast on this CPU.

bf16 autocast only pays on a CPU that does bf16 arithmetic natively (`avx512_bf16` or
`amx_bf16` in /proc/cpuinfo); elsewhere oneDNN emulates it and a bf16 matmul is slower than
fp32. So: no native flag -> fp32, decided without measuring. With one, a square matmul is
timed once in fp32 and under `torch.autocast("cpu", dtype=torch.bfloat16)`, and bf16 wins
only at >= 1.2x the fp32 rate. The verdict is cached in `<cache root>/cpu-precision.json`,
keyed by CPU model, torch version and thread count, so another CPU or torch re-measures.
`TUNELAB_CPU_BF16=1` (or `0`) forces the verdict without detecting or measuring.

bf16 autocast keeps fp32 master weights and optimizer state: Accelerate's
`mixed_precision="bf16"` on CPU wraps the forward (and the loop wraps the loss) in
`torch.autocast("cpu", torch.bfloat16)`; parameters are never cast.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tunelab.errors import TunelabError

ENV = "TUNELAB_CPU_BF16"
NATIVE_FLAGS = ("avx512_bf16", "amx_bf16")
MIN_SPEEDUP = 1.2
SIZE = 1024  # square matmul of the probe: 2.1 GFLOP, tens of ms in fp32 on a few cores
REPS = 3  # best of


@dataclass
class CpuPrecision:
    bf16: bool  # train.precision auto -> bf16 autocast (else fp32)
    why: str  # one clause for the run's printed line
    source: str  # override | no-native | probe | cache
    cpu: str = ""
    torch: str = ""
    threads: int = 0
    fp32_gflops: float | None = None
    bf16_gflops: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def cache_file() -> Path:
    from tunelab.models.gguf_cache import cache_root

    return cache_root() / "cpu-precision.json"


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def cpu_model() -> str:
    for line in _cpuinfo().splitlines():
        if line.lower().startswith("model name") and ":" in line:
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags() -> set[str]:
    """The first processor's flags (x86 `flags`, arm `Features`); empty when unknown."""
    for line in _cpuinfo().splitlines():
        key = line.split(":", 1)[0].strip().lower()
        if key in ("flags", "features") and ":" in line:
            return set(line.split(":", 1)[1].split())
    return set()


def _torch_bf16_check() -> bool | None:
    """oneDNN's own bf16 check (True also where bf16 is only emulated); None when absent."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return None


def native_bf16() -> bool:
    """True when this CPU does bf16 natively: a flag in /proc/cpuinfo (Linux) and torch's
    oneDNN check not saying no; without /proc/cpuinfo, torch's check alone."""
    flags = cpu_flags()
    torch_says = _torch_bf16_check()
    if flags:
        return bool(flags & set(NATIVE_FLAGS)) and torch_says is not False
    return bool(torch_says)


def _best(fn, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure(size: int | None = None, reps: int = REPS) -> tuple[float, float]:
    """GFLOP/s of a (size, size) fp32 matmul, plain and under CPU bf16 autocast; best of `reps`."""
    import torch

    n = size or SIZE
    a = torch.randn(n, n)
    b = torch.randn(n, n)

    def fp32():
        a @ b

    def bf16():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            a @ b  # autocast casts both operands, as a Linear's input and weight are

    rates = []
    for fn in (fp32, bf16):
        fn()  # warm-up: oneDNN picks its kernel on the first call
        rates.append(2 * n**3 / _best(fn, reps) / 1e9)
    return rates[0], rates[1]


def _override() -> bool | None:
    value = os.environ.get(ENV, "").strip()
    if not value:
        return None
    if value not in ("0", "1"):
        raise TunelabError(f"{ENV}: expected 0 (fp32) or 1 (bf16 autocast), got {value!r}")
    return value == "1"


def _key(cpu: str, torch_version: str, threads: int) -> str:
    return f"{cpu}|torch {torch_version}|threads {threads}"


def cpu_precision() -> CpuPrecision:
    """The verdict for this CPU: override, else no native bf16 -> fp32, else the cached or
    freshly measured fp32 vs bf16-autocast matmul rate."""
    forced = _override()
    if forced is not None:
        return CpuPrecision(forced, f"{ENV}={int(forced)}", "override")
    import torch

    cpu, version, threads = cpu_model(), torch.__version__, torch.get_num_threads()
    ident = {"cpu": cpu, "torch": version, "threads": threads}
    if not native_bf16():
        return CpuPrecision(False, "no native bf16 on this CPU", "no-native", **ident)
    key = _key(cpu, version, threads)
    path = cache_file()
    try:
        stored = json.loads(path.read_text())
        if not isinstance(stored, dict):
            stored = {}
    except (OSError, ValueError):
        stored = {}
    hit = stored.get(key)
    if isinstance(hit, dict) and {"fp32_gflops", "bf16_gflops", "bf16"} <= hit.keys():
        fp32, bf16, verdict, source = hit["fp32_gflops"], hit["bf16_gflops"], hit["bf16"], "cache"
    else:
        fp32, bf16 = measure()
        verdict, source = bf16 >= MIN_SPEEDUP * fp32, "probe"
        stored[key] = {**ident, "fp32_gflops": fp32, "bf16_gflops": bf16, "bf16": verdict}
        stored[key]["at"] = time.time()
        try:
            from tunelab.atomic import atomic_write_text

            atomic_write_text(path, json.dumps(stored, indent=1))
        except OSError:
            pass  # a read-only cache costs a measurement next time, nothing else
    rates = f"this CPU: {bf16:.0f} vs {fp32:.0f} GFLOP/s"
    why = rates if verdict else f"bf16 autocast under {MIN_SPEEDUP}x fp32, {rates}"
    return CpuPrecision(verdict, why, source, **ident, fp32_gflops=fp32, bf16_gflops=bf16)
