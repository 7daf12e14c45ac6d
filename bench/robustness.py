"""Benchmark: does adversarial training make a classifier more robust to text attacks?

Fine-tunes the packaged MiniLM (all-minilm-l6-v2, full fine-tuning) on the same SST-2 subset
with the same budget twice: `procedure: standard` and `procedure: adversarial` (FGM on the
input embeddings). Then both face the same seeded attacks on the SST-2 validation file:
typos, synonym swaps and word drops on all 872 rows, and the greedy synonym-substitution
attack (TextFooler-style) on the first --greedy-rows rows (it costs ~100 forward passes a row).

example:
  OMP_NUM_THREADS=1 .venv/bin/python bench/robustness.py
  OMP_NUM_THREADS=1 .venv/bin/python bench/robustness.py --train-rows 1000 --greedy-rows 50 --no-save
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, report, start_run  # noqa: E402

SST2 = REPO.parent / "shared" / "datasets" / "sst2"
VARIANTS = ("standard", "adversarial")
ADVERSARIAL = {"name": "adversarial", "attack": "fgm", "epsilon": 0.1, "norm": "l2"}


def config(variant: str, args) -> dict:
    return {
        "model": "all-minilm-l6-v2",
        "task": "classification",
        "data": {
            "train": str(SST2 / "train.jsonl"),
            "validation": str(SST2 / "validation.jsonl"),
            "text": "sentence",
            "label": "label",
            "max_train_rows": args.train_rows,
            "max_length": 64,
        },
        "method": {"name": "full"},
        "procedure": ADVERSARIAL if variant == "adversarial" else {"name": "standard"},
        "train": {"epochs": args.epochs, "batch_size": 32, "lr": 5e-5, "seed": 0},
        "eval": {"baselines": []},
        "output": str(Path(args.work) / variant),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--train-rows", type=int, default=4000)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--greedy-rows", type=int, default=200)
    p.add_argument("--work", default="/tmp/tunelab-bench-robustness")
    p.add_argument("--reuse", action="store_true", help="attack models already trained in --work")
    p.add_argument("--no-save", action="store_true")
    args = p.parse_args()
    names, run = start_run("robustness.py", args.variants, VARIANTS, ("torch", "transformers"))
    from tunelab import api

    run["results"] = []
    data = SST2 / "validation.jsonl"
    for name in names:
        row: dict = {"variant": name}
        cached = Path(args.work) / name / "bench_row.json"
        if args.reuse and cached.is_file():  # trained and attacked already with these settings
            run["results"].append(json.loads(cached.read_text()))
            continue
        t0 = time.perf_counter()
        if not (args.reuse and (Path(args.work) / name / "model").is_dir()):
            res = api.train(config(name, args), overwrite=True)
            row["train_seconds"] = res["timing"]["train_seconds"]
            row["procedure"] = res["run"]["procedure"]
        t1 = time.perf_counter()
        fast = api.robustness(Path(args.work) / name, data, attacks=["typo", "synonym", "drop"])
        t2 = time.perf_counter()
        greedy = api.robustness(
            Path(args.work) / name, data, attacks=["greedy"], rows=args.greedy_rows
        )
        t3 = time.perf_counter()
        row.update(
            clean_accuracy=fast["clean_accuracy"],
            greedy_clean_accuracy=greedy["clean_accuracy"],
            attacks={**fast["attacks"], **greedy["attacks"]},
            seconds={"train": t1 - t0, "random_attacks": t2 - t1, "greedy": t3 - t2},
        )
        print(json.dumps({k: row[k] for k in ("variant", "clean_accuracy", "seconds")}), flush=True)
        cached.write_text(json.dumps(row))
        run["results"].append(row)

    lines = [
        f"## {run['date']} · {run['machine']['cpu']}, {run['machine']['cores']} cores, "
        "OMP_NUM_THREADS=1",
        "",
        f"Settings: all-minilm-l6-v2, full fine-tuning, SST-2 train first {args.train_rows} rows, "
        f"{args.epochs:g} epoch(s), batch 32, lr 5e-5, max length 64, seed 0; adversarial = "
        f"FGM on the word embeddings, epsilon {ADVERSARIAL['epsilon']} (l2 per example), weight 1. "
        "Attacks on the SST-2 validation file (872 rows; greedy: first "
        f"{args.greedy_rows} rows), seed 0, 20% of the words edited (at least one), greedy "
        "budget 25% of the words, 20 synonyms tried per word.",
        "",
        "| model | attack | rows | clean acc | acc under attack | success rate | mean words changed |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in run["results"]:
        for a, m in r["attacks"].items():
            clean = r["greedy_clean_accuracy"] if a == "greedy" else r["clean_accuracy"]
            n = args.greedy_rows if a == "greedy" else 872
            lines.append(
                f"| {r['variant']} | {a} | {n} | {clean:.4f} | {m['accuracy']:.4f} | "
                f"{m['success_rate']:.4f} | {m['mean_words_changed']:.2f} |"
            )
    lines += ["", "Seconds (train / typo+synonym+drop / greedy):"]
    for r in run["results"]:
        s = r["seconds"]
        extra = ""
        if "procedure" in r and "mean_clean_loss" in r["procedure"]:
            pr = r["procedure"]
            extra = f"; mean clean loss {pr['mean_clean_loss']}, adversarial {pr['mean_adversarial_loss']}"
        lines.append(
            f"- {r['variant']}: {s['train']:.0f} / {s['random_attacks']:.0f} / {s['greedy']:.0f}{extra}"
        )
    lines += ["", f"Command: `OMP_NUM_THREADS=1 {run['command']}`"]
    return report(
        "robustness",
        "Robustness: standard vs adversarial training",
        "\n".join(lines),
        run,
        args.no_save,
    )


if __name__ == "__main__":
    sys.exit(main())
