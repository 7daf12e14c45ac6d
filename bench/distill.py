"""Benchmark: distil a fine-tuned 6-layer MiniLM SST-2 teacher into a 3-layer student.

Three runs, one after another, in this process (one CPU thread):

1. teacher: examples/distill_sst2_teacher.yaml (full fine-tune of all-minilm-l6-v2);
2. distilled: examples/distill_sst2.yaml, the teacher's first 3 layers trained with
   alpha 0.5, T 2, cached teacher logits;
3. no_distill: the same 3-layer student, same settings, alpha 1.0 (labels only).

Every model is scored on the 872-row SST-2 validation set; parameters, size on disk of the
saved model folder and CPU latency per example (batch 1 / batch 32, median of 5) come from
each run's results["distill"]. Writes bench/results/distill.md (+ raw JSON).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch loads: the CPUs are shared
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, report, start_run  # noqa: E402

VARIANTS = ("teacher", "distilled", "no_distill")
EXAMPLE = """example:
  .venv/bin/python bench/distill.py                      # all three, 3000 rows, ~25 min
  .venv/bin/python bench/distill.py --train-rows 1000 --epochs 1 --no-save   # a smoke run
  .venv/bin/python bench/distill.py --teacher runs/distill_sst2_teacher --variants distilled,no_distill
"""


def _train(config: str, overrides: list[str]) -> tuple[dict, float]:
    from tunelab import api

    t0 = time.perf_counter()
    results = api.train(REPO / config, overrides, overwrite=True)
    return results, time.perf_counter() - t0


def _row(name: str, side: dict, results: dict, wall: float, layers: int) -> dict:
    return {
        "variant": name,
        "layers": layers,
        "accuracy": side.get("accuracy"),
        "f1_macro": side.get("f1_macro"),
        "params": side["params"],
        "size_mb": side["size_mb"],
        "latency_ms_batch1": side["latency_ms_batch1"],
        "latency_ms_batch32": side["latency_ms_batch32"],
        "train_seconds": results["timing"]["train_seconds"] if results else None,
        "wall_seconds": round(wall, 1),
    }


def table(rows: list[dict], settings: str) -> str:
    teacher = next((r for r in rows if r["variant"] == "teacher"), None)
    lines = [
        "| model | layers | params | size on disk MB | val accuracy | kept of teacher "
        "| CPU ms/example, batch 1 | CPU ms/example, batch 32 | train s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        kept = (
            f"{r['accuracy'] / teacher['accuracy']:.1%}"
            if teacher and r is not teacher and teacher["accuracy"]
            else "(reference)"
        )
        train_s = "-" if r["train_seconds"] is None else f"{r['train_seconds']:.0f}"
        lines.append(
            f"| {r['variant']} | {r['layers']} | {r['params'] / 1e6:.1f}M | {r['size_mb']:.1f} "
            f"| {r['accuracy']:.4f} | {kept} | {r['latency_ms_batch1']:.1f} "
            f"| {r['latency_ms_batch32']:.2f} | {train_s} |"
        )
    return settings + "\n\n" + "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--train-rows", type=int, default=3000)
    ap.add_argument("--epochs", type=float, default=2)
    ap.add_argument("--student-layers", type=int, default=3)
    ap.add_argument("--teacher", help="reuse this trained teacher run instead of training one")
    ap.add_argument("--work", default="runs/bench-distill", help="where the runs go")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    names, run = start_run("distill.py", args.variants, VARIANTS, ("torch", "transformers"))
    import torch

    if os.environ.get("OMP_NUM_THREADS"):  # the shared-machine runs used 1
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    work = Path(args.work)
    teacher_dir = Path(args.teacher) if args.teacher else work / "teacher"
    common = [f"data.max_train_rows={args.train_rows}", f"train.epochs={args.epochs}"]
    rows, teacher_results, teacher_wall = [], None, 0.0
    if "teacher" in names and not args.teacher:
        print("teacher: training", flush=True)
        teacher_results, teacher_wall = _train(
            "examples/distill_sst2_teacher.yaml", [*common, f"output={teacher_dir}"]
        )
    student = [
        *common,
        f"model={teacher_dir}",
        f"procedure.teacher={teacher_dir}",
        f"procedure.student_layers={args.student_layers}",
    ]
    reports = {}
    for name, alpha in (("distilled", 0.5), ("no_distill", 1.0)):
        if name in names:
            print(f"{name}: training (alpha {alpha})", flush=True)
            res, wall = _train(
                "examples/distill_sst2.yaml",
                [*student, f"procedure.alpha={alpha}", f"output={work / name}"],
            )
            reports[name] = (res, wall)
    first = next(iter(reports.values()), None)
    if "teacher" in names and first is not None:  # measured beside the students, same way
        rows.append(
            _row("teacher", first[0]["distill"]["teacher"], teacher_results, teacher_wall, 6)
        )
    for name, (res, wall) in reports.items():
        rows.append(_row(name, res["distill"]["student"], res, wall, args.student_layers))
    run["results"] = rows
    run["settings"] = vars(args)
    settings = (
        f"## {run['date']} · {run['machine']['cpu']}, {run['machine']['cores']} cores, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}\n\n"
        f"Command: `{run['command']}`\n\n"
        f"SST-2: first {args.train_rows} training rows, scored on the 872-row validation set; "
        f"{args.epochs:g} epochs each, batch 32, full fine-tuning. Teacher: all-minilm-l6-v2 "
        f"(6 layers). Students: the teacher's embeddings + first {args.student_layers} layers + "
        "head; `distilled` alpha 0.5, T 2, cached teacher logits; `no_distill` alpha 1.0 "
        "(labels only). Latency: one forward pass on CPU, median of 5, per example. The machine "
        "was shared with other jobs, so seconds are indicative."
    )
    return report(
        "distill", "Knowledge distillation benchmark", table(rows, settings), run, args.no_save
    )


if __name__ == "__main__":
    sys.exit(main())
