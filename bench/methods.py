"""Benchmark: every adaptation method on the packaged MiniLM encoder and SST-2.

Each method fine-tunes all-minilm-l6-v2 on the same seeded SST-2 subset for the same number
of epochs, batch size and schedule, at its own default learning rate (training/defaults.py),
and is scored on the SST-2 dev set. Each runs in its own subprocess so that its peak RSS is
its own. The table: trainable parameters, size on disk of what the method saves, peak RSS,
training samples/s and dev accuracy. qlora needs a CUDA GPU and is listed only where one is.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classification import DATA_DIR, write_subset  # noqa: E402
from common import peak_rss_mib, report, run_child, start_run  # noqa: E402

METHODS = ("full", "freeze", "lora", "dora", "ia3", "adapter", "prefix", "prompt", "qlora")
BATCH_SIZE = 32
MAX_LENGTH = 64  # SST-2 sentences: 99th percentile is ~55 MiniLM tokens

EXAMPLE = """example:
  .venv/bin/python bench/methods.py --train-rows 2000 --epochs 2 --threads 2
  .venv/bin/python bench/methods.py --variants lora,ia3 --train-rows 300 --no-save
"""


def child_main(args: argparse.Namespace) -> None:
    """Train one method and print its figures as one JSON line on stdout."""
    import torch

    from tunelab.api import train

    if args.threads:
        torch.set_num_threads(args.threads)
    config = {
        "model": "all-minilm-l6-v2",
        "data": {
            "train": args.train_file,
            "validation": args.dev_file,
            "text": "sentence",
            "label": "label",
            "max_length": MAX_LENGTH,
        },
        "method": {"name": args.variant},
        "train": {
            "epochs": args.epochs,
            "batch_size": BATCH_SIZE,
            "seed": 0,
            "class_weights": "none",
            "early_stopping": {"enabled": False},
        },
        "eval": {"baselines": []},
        "output": str(Path(args.workdir) / args.variant),
    }
    results = train(config, overwrite=True)
    run, timing = results["run"], results["timing"]
    row = {
        "variant": args.variant,
        "lr": results["run"]["defaults_chosen"]["train.lr"]["value"],
        "trainable_params": run["trainable_params"],
        "total_params": run["total_params"],
        "saved_mb": run["saved_mb"],
        "adapter_mb": run["adapter_mb"],
        "train_samples": timing["train_samples"],
        "train_seconds": timing["train_seconds"],
        "samples_per_s": timing["samples_per_s"],
        "dev_accuracy": results["validation"]["accuracy"],
        "peak_rss_mib": peak_rss_mib(),
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(row), flush=True)


def markdown(rows: list[dict], run: dict) -> str:
    m, s = run["machine"], run["settings"]
    v = m["versions"]
    lines = [
        f"## {run['date']} · {m['cpu']}, {m['cores']} cores, {m['ram_gib']:.1f} GiB RAM",
        "",
        f"torch {v['torch']}, transformers {v['transformers']}, peft {v['peft']}, "
        f"tunelab {v['tunelab']}, Python {m['python']}; torch threads {s['threads'] or 'default'}.",
        "",
        f"Settings: all-minilm-l6-v2 on an SST-2 train subset of {s['train_rows']} rows "
        f"(seed 0), dev {s['dev_rows']} rows; {s['epochs']} epochs, batch size {BATCH_SIZE}, "
        f"max length {MAX_LENGTH}, linear schedule with 6% warmup, each method at its default "
        "learning rate, fp32 on CPU. Saved = the weights the method writes to model/ (merged "
        "methods: the full model; their update alone is in adapter/).",
        "",
        "| method | lr | trainable params | share | saved MB | update alone MB | peak RSS MiB "
        "| samples/s | dev accuracy |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['variant']} | failed: {r['error']} | | | | | | | |")
            continue
        alone = r["adapter_mb"] if r["adapter_mb"] is not None else r["saved_mb"]
        if r["variant"] in ("full", "freeze"):
            alone = "n/a"
        else:
            alone = f"{alone:.2f}"
        lines.append(
            f"| {r['variant']} | {r['lr']:g} | {r['trainable_params']:,} "
            f"| {r['trainable_params'] / r['total_params']:.2%} | {r['saved_mb']:.2f} | {alone} "
            f"| {r['peak_rss_mib']:.0f} | {r['samples_per_s']:.1f} | {r['dev_accuracy']:.4f} |"
        )
    lines += ["", f"Command: `{run['command']}`", ""]
    return "\n".join(lines)


def parent_main(args: argparse.Namespace) -> int:

    from tunelab.methods.fit import fitting_methods
    from tunelab.models.loading import load_config
    from tunelab.models.sources import resolve_model

    # what tunelab refuses here (qlora without a GPU, prefix on BERT heads in transformers 5)
    fits = fitting_methods("classification", load_config(resolve_model("all-minilm-l6-v2")))
    known = tuple(m for m in METHODS if m in fits)
    if len(known) < len(METHODS):
        print(f"skipped (tunelab refuses them here): {sorted(set(METHODS) - set(known))}")
    default = ",".join(known)
    variants, run = start_run(
        "methods.py", args.variants or default, known, ("torch", "transformers", "peft")
    )
    run["settings"] = {
        "train_rows": args.train_rows,
        "epochs": args.epochs,
        "threads": args.threads,
    }
    with tempfile.TemporaryDirectory(prefix="tunelab-bench-") as tmp:
        train_file, dev_file = Path(tmp) / "train.jsonl", DATA_DIR / "validation.jsonl"
        write_subset(args.train_rows, train_file)
        run["settings"]["dev_rows"] = sum(1 for line in dev_file.open() if line.strip())
        rows = []
        for i, name in enumerate(variants, 1):
            print(f"[{i}/{len(variants)}] {name}", flush=True)
            cmd = [sys.executable, str(Path(__file__).resolve()), "--variant", name]
            cmd += ["--epochs", str(args.epochs), "--train-file", str(train_file)]
            cmd += ["--dev-file", str(dev_file), "--workdir", tmp]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            rows.append(
                run_child(
                    name,
                    cmd,
                    Path(tmp),
                    lambda r: (
                        f"{r['samples_per_s']:.1f} samples/s, dev accuracy {r['dev_accuracy']:.4f}"
                    ),
                )
            )
    run["results"] = rows
    return report("methods", "Adaptation methods benchmark", markdown(rows, run), run, args.no_save)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Fine-tune the packaged MiniLM on SST-2 with every adaptation method and "
        "tabulate trainable parameters, size on disk, peak RSS, samples/s and dev accuracy.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--train-rows", type=int, default=2000, help="SST-2 train rows (default 2000)"
    )
    parser.add_argument("--epochs", type=float, default=2, help="default 2")
    parser.add_argument(
        "--variants",
        default=None,
        help=f"comma-separated (default: {','.join(METHODS)}; qlora on GPU only)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads per run")
    parser.add_argument("--no-save", action="store_true", help="print the table only")
    for flag in ("--variant", "--train-file", "--dev-file", "--workdir"):
        parser.add_argument(flag, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train_rows <= 0 or args.epochs <= 0:
        parser.error("--train-rows and --epochs must be > 0")
    if args.variant:
        child_main(args)
    else:
        sys.exit(parent_main(args))


if __name__ == "__main__":
    main()
