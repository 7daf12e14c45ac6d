"""Benchmark: multi-task learning (one shared MiniLM encoder, three heads) vs three single-task
runs with the same budget.

Tasks (from ../shared/datasets): SST-2 sentiment, RTE entailment (sentence pairs), CoNLL-2003
NER. Each gets the same number of training rows; validation subsets pick the best checkpoint,
and separate test subsets are scored at the end:
- SST-2: validation = the first 200 rows of its validation file, test = the next 400;
- RTE: validation = 200 training rows after the ones trained on, test = its validation file
  (277 rows; the official test has no labels);
- CoNLL-2003: validation = first 200 rows of validation, test = first 400 rows of test.
Budget: same steps per task. The multitask run takes its batches round-robin (equal rows: each
task gets exactly a third of the batches), epochs x (rows / batch) steps per task, i.e. as many
steps in all as the three single-task runs together. Same model, method (full), lr, batch, epochs.

Each variant runs in its own process (bench/common.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, report, run_child, start_run  # noqa: E402

DATA = REPO.parent / "shared" / "datasets"
VARIANTS = ("multitask", "single_sst2", "single_rte", "single_conll")
MODEL = "all-minilm-l6-v2"
TASKS = {
    "sst2": {"task": "classification", "text": "sentence", "label": "label"},
    "rte": {
        "task": "classification",
        "text": "sentence1",
        "text_pair": "sentence2",
        "label": "label_text",
        "max_length": 128,
    },
    "conll": {
        "task": "token-classification",
        "text": "tokens",
        "label": "ner_tags",
        "max_length": 64,
    },
}
PRIMARY = {"sst2": "accuracy", "rte": "accuracy", "conll": "f1"}
EXAMPLE = """example:
  OMP_NUM_THREADS=1 .venv/bin/python bench/multitask.py
  OMP_NUM_THREADS=1 .venv/bin/python bench/multitask.py --rows 300 --epochs 1 --no-save
"""


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def write_subsets(work: Path, rows: int) -> dict[str, dict[str, str]]:
    """train/validation/test files per task (see the module docstring)."""
    src = {
        "sst2": (
            _lines(DATA / "sst2/train.jsonl")[:rows],
            _lines(DATA / "sst2/validation.jsonl")[:200],
            _lines(DATA / "sst2/validation.jsonl")[200:600],
        ),
        "rte": (
            _lines(DATA / "rte/train.jsonl")[:rows],
            _lines(DATA / "rte/train.jsonl")[rows : rows + 200],
            _lines(DATA / "rte/validation.jsonl"),
        ),
        "conll": (
            _lines(DATA / "conll2003/train.jsonl")[:rows],
            _lines(DATA / "conll2003/validation.jsonl")[:200],
            _lines(DATA / "conll2003/test.jsonl")[:400],
        ),
    }
    files = {}
    for name, parts in src.items():
        files[name] = {}
        for split, lines in zip(("train", "validation", "test"), parts, strict=True):
            path = work / f"{name}_{split}.jsonl"
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            files[name][split] = str(path)
    return files


def _data(name: str, files: dict) -> dict:
    spec = {k: v for k, v in TASKS[name].items() if k != "task"}
    return {**files[name], **spec}


def config(variant: str, files: dict, args, out: Path) -> dict:
    cfg = {
        "model": MODEL,
        "method": {"name": "full"},
        "train": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "seed": 0,
            "log_steps": 20,
        },
        "eval": {"baselines": []},
        "output": str(out / variant),
    }
    if variant == "multitask":
        cfg["procedure"] = {
            "name": "multitask",
            "sampling": "round_robin",
            "tasks": [
                {"name": n, "task": TASKS[n]["task"], "data": _data(n, files)} for n in TASKS
            ],
        }
    else:
        name = variant.removeprefix("single_")
        cfg["task"] = TASKS[name]["task"]
        cfg["data"] = _data(name, files)
    return cfg


def child_main(args) -> None:
    import torch

    from tunelab import api

    torch.set_num_threads(args.threads)
    files = json.loads(Path(args.files).read_text())
    res = api.train(config(args.variant, files, args, Path(args.workdir)), overwrite=True)
    if args.variant == "multitask":
        scores = {n: res["tasks"][n] for n in TASKS}
    else:
        name = args.variant.removeprefix("single_")
        scores = {name: {"validation": res["validation"], "test": res["test"]}}
    row = {
        "variant": args.variant,
        "steps": res["run"]["steps"],
        "train_seconds": res["timing"]["train_seconds"],
        "scores": {
            n: {
                s: {k: s_[k] for k in (PRIMARY[n], "f1_macro", "f1") if k in s_}
                for s, s_ in v.items()
                if s in ("validation", "test")
            }
            for n, v in scores.items()
        },
    }
    if args.variant == "multitask":
        row["batches"] = {n: t["batches"] for n, t in res["run"]["procedure"]["tasks"].items()}
    print(json.dumps(row), flush=True)


def markdown(rows: list[dict], run: dict) -> str:
    m, s = run["machine"], run["settings"]
    by = {r["variant"]: r for r in rows}
    mt = by.get("multitask", {})
    lines = [
        f"## {run['date'][:10]} (run at {run['date']})",
        "",
        f"Command: `OMP_NUM_THREADS=1 {run['command']}`  ",
        f"Machine: {m['cpu']}, {m['cores']} cores (shared), torch "
        f"{m['versions'].get('torch')}, transformers {m['versions'].get('transformers')}; "
        f"{s['threads']} torch thread(s)  ",
        f"Model: {MODEL}, method full, lr {s['lr']}, batch {s['batch_size']}, {s['epochs']} "
        f"epoch(s); {s['rows']} training rows per task. Budget: same steps per task "
        f"(multitask: {mt.get('steps', '?')} steps in all, batches per task "
        f"{mt.get('batches', '?')}; round-robin sampling).",
        "",
        "| task | metric | single-task test | multitask test | single-task val | multitask val | single steps |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]

    def get(r: dict, n: str, split: str) -> str:
        v = r.get("scores", {}).get(n, {}).get(split, {}).get(PRIMARY[n])
        return f"{v:.4f}" if v is not None else "-"

    for n in TASKS:
        single = by.get(f"single_{n}", {})
        lines.append(
            f"| {n} | {PRIMARY[n]} | {get(single, n, 'test')} | {get(mt, n, 'test')} | "
            f"{get(single, n, 'validation')} | {get(mt, n, 'validation')} | "
            f"{single.get('steps', '-')} |"
        )
    singles = [by[v] for v in VARIANTS[1:] if v in by and "train_seconds" in by[v]]
    each = ", ".join(f"{r['variant']} {r['train_seconds']:.0f} s" for r in singles)
    lines += [
        "",
        f"Training time: multitask {mt.get('train_seconds', float('nan')):.0f} s; single-task "
        f"runs {sum(r['train_seconds'] for r in singles):.0f} s together "
        f"({each}). "
        "One multitask run leaves one encoder for all three tasks (one saved folder per task).",
    ]
    return "\n".join(lines) + "\n"


def parent_main(args) -> int:
    variants, run = start_run("multitask.py", args.variants, VARIANTS, ("torch", "transformers"))
    run["settings"] = {
        k: getattr(args, k) for k in ("rows", "epochs", "lr", "batch_size", "threads")
    }
    with tempfile.TemporaryDirectory(prefix="tunelab-bench-mt-") as tmp:
        work = Path(tmp)
        files = write_subsets(work, args.rows)
        (work / "files.json").write_text(json.dumps(files))
        rows = []
        for i, name in enumerate(variants, 1):
            print(f"[{i}/{len(variants)}] {name}", flush=True)
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--variant",
                name,
                "--files",
                str(work / "files.json"),
                "--workdir",
                tmp,
            ]
            for flag in ("rows", "epochs", "lr", "batch_size", "threads"):
                cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
            rows.append(run_child(name, cmd, work, lambda r: f"{r['steps']} steps, {r['scores']}"))
    run["results"] = rows
    return report(
        "multitask", "Multi-task learning benchmark", markdown(rows, run), run, args.no_save
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description="SST-2 + RTE + CoNLL-2003 NER on all-minilm-l6-v2: one multitask run "
        "(shared encoder) vs three single-task runs, same steps per task.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=320, help="training rows per task")
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument("--no-save", action="store_true", help="print only")
    for flag in ("--variant", "--files", "--workdir"):
        parser.add_argument(flag, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        child_main(args)
    else:
        sys.exit(parent_main(args))


if __name__ == "__main__":
    main()
