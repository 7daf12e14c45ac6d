"""Benchmark: int8 export of the MiniLM SST-2 run (runs/sst2) against fp32.

Runs `tunelab export runs/sst2 --format int8` (onnxruntime dynamic int8 quantization) and
reports what its export.json holds: file size, CPU latency per example at batch 1 and 32
(median of repeats, onnxruntime with the stated intra-op threads) and accuracy / macro F1 on
the SST-2 test rows (examples/data/sst2/test.jsonl, 872 rows), fp32 ONNX vs int8 ONNX, plus
the PyTorch fp32 model on the same batches for reference. Results: bench/results/export_int8.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, cpu_busy, report, start_run  # noqa: E402

EXAMPLE = """example:
  OMP_NUM_THREADS=1 .venv/bin/python bench/export_int8.py
  OMP_NUM_THREADS=1 .venv/bin/python bench/export_int8.py --repeats 3 --no-save
"""


def torch_latency(run: Path, threads: int, repeats: int) -> dict:
    """PyTorch fp32 ms/example on the batches the export timed (test rows, length-trimmed)."""
    import torch

    from tunelab.export.int8 import _trim
    from tunelab.export.source import Source

    torch.set_num_threads(threads)
    src = Source.open(run, limit=128)
    feeds, model = src.feeds(), src.trained.model
    out = {}
    for batch, count in ((1, 64), (32, 128)):
        batches = [_trim(feeds, slice(i, i + batch)) for i in range(0, count, batch)]
        batches = [{k: torch.from_numpy(v) for k, v in b.items()} for b in batches]
        times = []
        with torch.inference_mode():
            model(**batches[0])
            for _ in range(repeats):
                t0 = time.perf_counter()
                for b in batches:
                    model(**b)
                times.append((time.perf_counter() - t0) * 1000 / count)
        out[f"batch_{batch}"] = round(statistics.median(times), 3)
    return out


def table(check: dict, torch_ms: dict, busy: float) -> str:
    s, lat, m = check["size_mb"], check["latency_ms_per_example"], check["metric"]
    lines = [
        "| model | size MB | ms/example, batch 1 | ms/example, batch 32 | test accuracy | test macro F1 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| PyTorch fp32 | {s['fp32']:.1f} | {torch_ms['batch_1']:.2f} | {torch_ms['batch_32']:.2f} | (= ONNX fp32) | |",
    ]
    for name in ("fp32", "int8"):
        lines.append(
            f"| ONNX {name} | {s[name]:.1f} | {lat['batch_1'][name]:.2f} | "
            f"{lat['batch_32'][name]:.2f} | {m[name]['accuracy']:.4f} | {m[name]['f1_macro']:.4f} |"
        )
    lines.append(
        f"\nint8 vs fp32 ONNX on {check['n']} test rows: argmax agreement "
        f"{check['argmax_agreement']:.4f}, max |logit diff| {check['max_abs_diff']:.3f}; "
        f"fp32 ONNX vs PyTorch max |logit diff| {check['fp32_onnx_check']['max_abs_diff']:.2g}. "
        f"{lat['threads']} intra-op thread(s), median of {lat['repeats']} repeats; CPU "
        f"{100 * busy:.0f}% busy before the run (the machine was shared with other jobs, so "
        "milliseconds are indicative)."
    )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, epilog=EXAMPLE,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--run", default=str(REPO / "runs" / "sst2"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    _, run = start_run("export_int8.py", "int8", ("int8",), ("torch", "onnxruntime", "onnx"))
    busy = cpu_busy()
    from tunelab.export import export_run

    os.chdir(REPO)  # the run's config names its data files relative to the repo
    with tempfile.TemporaryDirectory() as tmp:
        rec = export_run(
            args.run, "int8", output=Path(tmp) / "int8", threads=args.threads, repeats=args.repeats
        )["int8"]
    torch_ms = torch_latency(Path(args.run), args.threads, args.repeats)
    run["results"] = [{"variant": "int8", "check": rec["check"], "torch_fp32_ms": torch_ms}]
    head = (
        f"## {run['date']} · {run['machine']['cpu']}, {run['machine']['cores']} cores, "
        f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}\n\nCommand: `{run['command']}`\n\n"
        f"Run: `{Path(args.run).name}` (MiniLM-L6 + LoRA merged, SST-2), exported with "
        "`tunelab export --format int8` (onnxruntime dynamic int8, per-channel weights).\n\n"
    )
    return report(
        "export_int8",
        "int8 export benchmark",
        head + table(rec["check"], torch_ms, busy),
        run,
        args.no_save,
    )


if __name__ == "__main__":
    sys.exit(main())
