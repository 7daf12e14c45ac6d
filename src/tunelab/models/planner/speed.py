"""How fast this machine does the work a training step is made of: matrix products
(GFLOP/s, at the model's own shape), memory-bound element-wise passes (GB/s) and the fixed
cost of one operator call. Measured by short probes (well under a second) and cached per
shape, dtype and thread count, so a plan's time comes from this machine, not a constant.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tunelab.models.planner.device import MFU, Device

CACHE_DAYS = 1.0


@dataclass
class Speed:
    gflops: float  # sustained matmul throughput at the model's shape
    bandwidth_gbs: float  # element-wise read + write throughput
    op_us: float  # fixed cost of one small operator call, microseconds
    source: str  # probe | cache | nominal

    def to_dict(self) -> dict:
        return asdict(self)


def _cache_file() -> Path:
    from tunelab.models.gguf_cache import cache_root

    return cache_root() / "planner-speed.json"


def _best(fn, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def probe(m: int, k: int, n: int, dtype: str = "fp32", device: str = "cpu") -> Speed:
    """Time (m, k) @ (k, n) products, a large element-wise add and a tiny op; best of a few."""
    import torch

    dt = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    a = torch.randn(m, k, dtype=dt, device=dev)
    b = torch.randn(k, n, dtype=dt, device=dev)

    def mm():
        for _ in range(4):
            a @ b
        sync()

    mm()  # warm-up (oneDNN picks its kernel on the first call)
    t = _best(mm, 3) / 4
    gflops = 2 * m * k * n / t / 1e9
    x = torch.randn(4_000_000, dtype=dt, device=dev)
    y = torch.randn(4_000_000, dtype=dt, device=dev)

    def add():
        x + y
        sync()

    add()
    t_add = _best(add, 5)
    bandwidth = 3 * x.numel() * x.element_size() / t_add / 1e9  # two reads, one write
    s = torch.ones(4, dtype=dt, device=dev)

    def tiny():
        for _ in range(200):
            s + s
        sync()

    tiny()
    op_us = _best(tiny, 3) / 200 * 1e6
    return Speed(gflops, bandwidth, op_us, "probe")


def machine_speed(device: Device, m: int, k: int, n: int, dtype: str = "fp32") -> Speed:
    """The probe's figures for this shape (cached a day), or a planned GPU's nominal ones."""
    if device.planned:
        if device.kind == "cuda":
            return Speed(device.tflops * 1e3 * MFU, device.bandwidth_gbs * 0.8, 8.0, "nominal")
        # a planned CPU: this machine's speed is the best guess there is
        device = Device("cpu", device.memory_mib, device.name)
    import torch

    m = min(max(64, m), 4096)  # a probe of a few ms: larger products run at the same rate
    threads = torch.get_num_threads()
    key = f"{device.kind}|{device.name}|{dtype}|{threads}|{m}x{k}x{n}"
    cache = _cache_file()
    try:
        stored = json.loads(cache.read_text())
    except (OSError, ValueError):
        stored = {}
    hit = stored.get(key)
    if hit and time.time() - hit.get("at", 0) < CACHE_DAYS * 86400:
        return Speed(hit["gflops"], hit["bandwidth_gbs"], hit["op_us"], "cache")
    speed = probe(m, k, n, dtype, "cuda" if device.kind == "cuda" else "cpu")
    stored[key] = {**asdict(speed), "at": time.time()}
    try:
        from tunelab.atomic import atomic_write_text

        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache, json.dumps(stored, indent=1))
    except OSError:
        pass  # a read-only cache costs a probe next time, nothing else
    return speed
