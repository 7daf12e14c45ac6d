"""Benchmark: continual learning, SST-2 then AG News (Business vs Sci/Tech), MiniLM.

Phase 1 fine-tunes the packaged MiniLM (full) on an SST-2 subset. Phase 2 continues that
model on the binary AG News copy with examples/continual.yaml, once per variant: plain
fine-tuning, replay of SST-2 rows, an L2 pull to the phase-1 weights, EWC. Each run scores
SST-2's validation set (872 rows) before and after phase 2 (procedure.old_validation) and
the new task on its own validation file. Every run is its own subprocess. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, peak_rss_mib, report, run_child, start_run  # noqa: E402

VARIANTS = ("plain", "replay", "l2", "ewc", "replay_ewc")
SST2 = REPO / "examples" / "data" / "sst2"
EXAMPLE = """example:
  OMP_NUM_THREADS=1 .venv/bin/python bench/continual.py
  OMP_NUM_THREADS=1 .venv/bin/python bench/continual.py --variants plain,ewc --weight 10 --no-save
"""


def phase1_config(out: Path, rows: int) -> dict:
    return {
        "model": "all-minilm-l6-v2",
        "task": "classification",
        "data": {
            "train": str(SST2 / "train.jsonl"),
            "validation": str(SST2 / "validation.jsonl"),
            "text": "sentence",
            "label": "label",
            "max_length": 64,
            "max_train_rows": rows,
        },
        "method": {"name": "full"},
        "train": {"epochs": 1, "batch_size": 32, "lr": 5e-5, "seed": 0},
        "eval": {"baselines": []},
        "output": str(out),
    }


def phase2_overrides(variant: str, phase1: Path, out: Path, rows: int, weight: float) -> list:
    base = [f"model={phase1}", f"output={out}", f"data.max_train_rows={rows}"]
    proc = {
        "plain": ["procedure.replay=null", "procedure.penalty=none"],
        "replay": ["procedure.replay_ratio=0.2", "procedure.penalty=none"],
        "l2": ["procedure.replay=null", "procedure.penalty=l2"],
        "ewc": ["procedure.replay_ratio=0", "procedure.penalty=ewc"],
        "replay_ewc": ["procedure.replay_ratio=0.2", "procedure.penalty=ewc"],
    }[variant]
    return base + proc + [f"procedure.penalty_weight={weight}"]


def child_main(args: argparse.Namespace) -> None:
    from tunelab import api

    out = Path(args.work) / args.child
    if args.child == "phase1":
        r = api.train(phase1_config(out, args.phase1_rows))
        row = {"sst2_validation_acc": r["validation"]["accuracy"]}
    else:
        over = phase2_overrides(
            args.child, Path(args.work) / "phase1", out, args.phase2_rows, args.weight
        )
        r = api.train(REPO / "examples" / "continual.yaml", over)
        f = r["forgetting"]
        row = {
            "sst2_before": f["before"]["accuracy"],
            "sst2_after": f["after"]["accuracy"],
            "sst2_drop": f["drop"]["accuracy"],
            "new_acc": r["validation"]["accuracy"],
            "new_base_acc": r["baselines"]
            .get("base_model", {})
            .get("validation", {})
            .get("accuracy"),
            "procedure": r["run"]["procedure"],
        }
    row.update(
        variant=args.child,
        train_rows=r["run"]["rows"]["train"],
        train_seconds=r["timing"]["train_seconds"],
        peak_rss_mib=round(peak_rss_mib(), 1),
    )
    print(json.dumps(row))


def table(rows: list[dict], args) -> str:
    p1 = next(r for r in rows if r["variant"] == "phase1")
    lines = [
        f"Phase 1: MiniLM (full) on {args.phase1_rows} SST-2 rows, 1 epoch: SST-2 accuracy "
        f"{p1['sst2_validation_acc']:.4f} on its 500-row held-out file "
        f"({p1['wall_seconds']:.0f} s).",
        "",
        f"Phase 2: {args.phase2_rows} AG News Business/Sci-Tech rows, 1 epoch, lr 5e-5, "
        f"penalty_weight {args.weight:g}; SST-2 = its 872-row validation set.",
        "",
        "| phase 2 | train rows | SST-2 before | SST-2 after | drop | new task acc | wall s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        if r["variant"] == "phase1" or "error" in r:
            continue
        lines.append(
            f"| {r['variant']} | {r['train_rows']} | {r['sst2_before']:.4f} | "
            f"{r['sst2_after']:.4f} | {r['sst2_drop']:+.4f} | {r['new_acc']:.4f} | "
            f"{r['wall_seconds']:.0f} |"
        )
    return "\n".join(lines)


def parent_main(args: argparse.Namespace) -> int:
    variants, run = start_run("continual.py", args.variants, VARIANTS, ("torch", "transformers"))
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-continual-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work dir: {work}")
    base = [sys.executable, __file__, "--work", str(work), "--weight", str(args.weight)]
    base += ["--phase1-rows", str(args.phase1_rows), "--phase2-rows", str(args.phase2_rows)]
    rows = []
    for name in ["phase1", *variants]:
        if name == "phase1" and (work / "phase1" / "results.json").exists():
            res = json.loads((work / "phase1" / "results.json").read_text())
            rows.append(
                {
                    "variant": "phase1",
                    "sst2_validation_acc": res["validation"]["accuracy"],
                    "wall_seconds": res["timing"]["total_seconds"],
                }
            )
            continue
        rows.append(
            run_child(
                name,
                [*base, "--child", name],
                work,
                lambda r: ", ".join(f"{k}={v}" for k, v in r.items() if "acc" in k or "sst2" in k),
            )
        )
        if name == "phase1" and "error" in rows[-1]:
            break
    run["results"] = rows
    title = "Continual learning: SST-2, then AG News (MiniLM, CPU)"
    header = f"## {run['date'][:10]}, `{run['command']}`\n\n"
    machine = run["machine"]
    header += (
        f"Machine: {machine['cpu']}, {machine['cores']} cores (shared), OMP_NUM_THREADS=1.\n\n"
    )
    return report("continual", title, header + table(rows, args), run, args.no_save)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Continual learning benchmark: forgetting of SST-2 after a second task.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--variants", default=",".join(VARIANTS[:4]), help="comma-separated")
    parser.add_argument("--weight", type=float, default=1.0, help="penalty_weight (l2, ewc)")
    parser.add_argument("--phase1-rows", type=int, default=2000)
    parser.add_argument("--phase2-rows", type=int, default=1000)
    parser.add_argument("--work", default=None, help="work dir (phase 1 is reused if there)")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
    else:
        sys.exit(parent_main(args))


if __name__ == "__main__":
    main()
