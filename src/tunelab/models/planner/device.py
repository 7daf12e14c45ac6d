"""The machine a plan is for: the one detected here (CPU RAM, or a CUDA GPU), or one named
with `--device cuda:80GB` to plan for a machine you do not have."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from tunelab.errors import ConfigError

# Nominal dense bf16 TFLOP/s and memory bandwidth (GB/s) of a GPU class, by memory size:
# a planned GPU cannot be probed, so its speed comes from its class (A100-80GB for 80 GB).
GPU_CLASSES = [  # (memory GiB up to, name, bf16 TFLOP/s, GB/s)
    (12, "RTX 3060-class", 50, 360),
    (16, "T4/V100-16GB-class", 65, 320),
    (24, "RTX 4090/A10-class", 125, 600),
    (48, "A6000/L40-class", 180, 860),
    (80, "A100-80GB-class", 312, 2000),
    (96, "H100-class", 989, 3350),
    (1_000_000, "H200/B200-class", 989, 4800),
]
MFU = 0.4  # share of the nominal peak a fine-tuning step reaches on a GPU (typical 30-50%)


@dataclass
class Device:
    kind: str  # cpu | cuda
    memory_mib: float  # what a run may use: free RAM (CPU), total GPU memory (CUDA)
    name: str
    planned: bool = False  # named with --device, not detected
    tflops: float | None = None  # nominal peak of a planned GPU
    bandwidth_gbs: float | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @property
    def label(self) -> str:
        return f"{self.kind} {self.memory_mib / 1024:.1f} GiB ({self.name})"


def _mem_available_mib() -> float:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20


def detect_device() -> Device:
    """CUDA device 0 when there is one, else this machine's available RAM."""
    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return Device("cuda", props.total_memory / 2**20, props.name)
    import platform

    return Device("cpu", _mem_available_mib(), platform.processor() or platform.machine())


def parse_device(text: str | None) -> Device:
    """`cuda:80GB`, `cuda:24GiB`, `cpu:16GB`, `cpu` or `cuda` (detected); None:
    `$TUNELAB_PLAN_DEVICE` when set (train's preflight plans for it too), else detected."""
    import os

    text = text or os.environ.get("TUNELAB_PLAN_DEVICE") or None
    if text is None:
        return detect_device()
    m = re.fullmatch(r"(cpu|cuda)(?::(\d+(?:\.\d+)?)\s*(gb|gib|g|mb|mib)?)?", text.strip().lower())
    if not m:
        raise ConfigError(
            "--device",
            "expected cuda:<size>GB or cpu:<size>GB (e.g. cuda:80GB)",
            text,
            has_value=True,
        )
    kind, size, unit = m.group(1), m.group(2), m.group(3) or "gb"
    if size is None:
        here = detect_device()
        if here.kind != kind:
            raise ConfigError(
                "--device",
                f"no {kind} device here (detected {here.kind}); give its size, e.g. {kind}:80GB",
                text,
                has_value=True,
            )
        return here
    mib = float(size) * (1 if unit in ("mb", "mib") else 1024)
    if kind == "cpu":
        return Device("cpu", mib, "planned CPU", planned=True)
    gib = mib / 1024
    name, tflops, gbs = next((n, t, b) for lim, n, t, b in GPU_CLASSES if gib <= lim)
    return Device("cuda", mib, name, planned=True, tflops=tflops, bandwidth_gbs=gbs)
