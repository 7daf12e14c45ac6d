"""The two CPU kernel choices behind tunelab's CPU defaults, measured on this machine.

1. AdamW's step: torch's CPU default (a per-tensor for-loop) vs `foreach=True` vs
   `fused=True` (what training/optim.py picks on CPU), on a full fine-tune's parameter set
   (a 6-layer 384-wide encoder's, as all-minilm-l6-v2) and a LoRA adapter's (r=8 on q,v of
   12 layers of 768).
2. A square fp32 matmul plain vs under `torch.autocast("cpu", torch.bfloat16)`: the probe
   training/cpu_precision.py runs where the CPU has native bf16 (it picks bf16 only at
   >= 1.2x). Its fp32 figure is also this CPU's matmul roofline for MFU.

    .venv/bin/python bench/cpu_kernels.py              # 1 and 2 threads, saves the table
    .venv/bin/python bench/cpu_kernels.py --threads 2 --no-save
"""

from __future__ import annotations

import argparse
import time

import torch
from common import cpu_busy, machine_info, report

SETS = {
    # 6 layers x (q,k,v,o 384x384 + ffn 384x1536, 1536x384) + biases and norms
    "full (6x384 encoder, 21M)": [(384, 384)] * 24
    + [(1536, 384), (384, 1536)] * 6
    + [(384,)] * 60
    + [(1536,)] * 6,
    "LoRA r=8 (q,v of 12x768)": [(8, 768), (768, 8)] * 24,
}
KERNELS = {
    "for-loop (torch CPU default)": {"foreach": False},
    "foreach": {"foreach": True},
    "fused (tunelab)": {"fused": True},
}


def _per_call_ms(fn, reps: int) -> float:
    for _ in range(3):
        fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps * 1000


def adamw_rows(reps: int) -> list[dict]:
    rows = []
    for label, shapes in SETS.items():
        params = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
        for p in params:
            p.grad = torch.randn_like(p)
        times = {
            k: _per_call_ms(torch.optim.AdamW(params, lr=1e-3, **kw).step, reps)
            for k, kw in KERNELS.items()
        }
        base = times["for-loop (torch CPU default)"]
        for kernel, ms in times.items():
            rows.append(
                {
                    "variant": f"adamw {label} {kernel}",
                    "set": label,
                    "kernel": kernel,
                    "ms_per_step": ms,
                    "speedup_vs_default": base / ms,
                }
            )
    return rows


def matmul_row(n: int, reps: int) -> dict:
    from tunelab.training.cpu_precision import native_bf16

    a, b = torch.randn(n, n), torch.randn(n, n)

    def bf16():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            a @ b

    fp32_ms = _per_call_ms(lambda: a @ b, reps)
    bf16_ms = _per_call_ms(bf16, reps)
    flop = 2 * n**3
    return {
        "variant": f"matmul {n}",
        "native_bf16": native_bf16(),
        "fp32_gflops": flop / fp32_ms / 1e6,
        "bf16_autocast_gflops": flop / bf16_ms / 1e6,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--matmul", type=int, default=1024, help="square matmul size")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    import datetime as dt

    busy = cpu_busy()
    run = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "cpu_busy_before": busy,
        "machine": machine_info(("torch",)),
        "results": [],
    }
    m = run["machine"]
    lines = [
        f"## {run['date'][:10]}: {m['cpu']}, {m['cores']} cores, torch "
        f"{m['versions']['torch']}, CPUs {busy:.0%} busy before",
        "",
        "| threads | parameter set | AdamW kernel | ms/step | vs torch's default |",
        "| --- | --- | --- | --- | --- |",
    ]
    matmul = []
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        for row in adamw_rows(args.reps):
            run["results"].append({**row, "threads": threads})
            lines.append(
                f"| {threads} | {row['set']} | {row['kernel']} | "
                f"{row['ms_per_step']:.2f} | {row['speedup_vs_default']:.1f}x |"
            )
        mm = {**matmul_row(args.matmul, max(3, args.reps // 4)), "threads": threads}
        run["results"].append(mm)
        matmul.append(
            f"| {threads} | {mm['native_bf16']} | {mm['fp32_gflops']:.0f} | "
            f"{mm['bf16_autocast_gflops']:.0f} |"
        )
    lines += [
        "",
        f"Square {args.matmul} matmul, GFLOP/s:",
        "",
        "| threads | native bf16 | fp32 | bf16 autocast |",
        "| --- | --- | --- | --- |",
        *matmul,
        "",
        "`.venv/bin/python bench/cpu_kernels.py`",
    ]
    return report(
        "cpu_kernels",
        "CPU kernels: AdamW step and bf16 autocast",
        "\n".join(lines),
        run,
        args.no_save,
    )


if __name__ == "__main__":
    raise SystemExit(main())
