"""Benchmark: LoRA SFT of the packaged SmolLM2-135M-Instruct, tunelab vs TRL's SFTTrainer.

Every variant trains the same model with the same LoRA settings, learning rate, schedule and
epochs on the same instruction rows (examples/data/instructions), then is scored by the same
function on the same validation answers (loss and perplexity on the assistant tokens). Each
variant runs in its own process so its peak RSS is its own. See bench/README.md.

Variants:
- tunelab: `tunelab.api.train` with its defaults for causal-lm (packing, assistant-only loss).
- tunelab_nopack: the same with `data.packing: false` (one row per sequence, length-grouped
  batches), to show what packing itself buys.
- trl_sft: the SFTTrainer + PEFT script a user would write: prompt/completion conversations,
  SFTConfig defaults (no packing, padding to the batch's longest, completion-only loss, and
  on this CPU also its bf16=True autocast and gradient checkpointing).
- trl_sft_fp32: the same with bf16=False and gradient_checkpointing=False, tunelab's
  numerics, so the gap left is padding and the training loop.
Trained tokens/s = the real (non-pad) tokens of the training rows / training seconds: the
same numerator for every variant, so the ratio is the wall-time ratio of training.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, peak_rss_mib, report, run_child, start_run  # noqa: E402

DATA_DIR = REPO / "examples" / "data" / "instructions"
VARIANTS = ("tunelab", "tunelab_nopack", "trl_sft", "trl_sft_fp32")
MODEL = "smollm2-135m-instruct"
BATCH_ROWS = 4  # rows per optimizer step (tunelab: packed sequences holding about as many)
LR = 5e-4
MAX_LENGTH = 512
LORA = {"r": 16, "alpha": 32, "dropout": 0.05}
WARMUP_RATIO = 0.06
SEED = 0

EXAMPLE = """example:
  .venv/bin/pip install -e ".[bench]"      # TRL, for the baseline
  .venv/bin/python bench/sft.py --train-rows 64 --dev-rows 50
  .venv/bin/python bench/sft.py --variants tunelab,trl_sft --train-rows 24 --no-save
"""


# --------------------------------------------------------------------------- child side


def _source():
    from tunelab.models.loading import load_tokenizer
    from tunelab.models.sources import resolve_model

    source = resolve_model(MODEL)
    return source, load_tokenizer(source)


def eval_answers(model, tokenizer, dev_file: Path) -> dict:
    """Loss/perplexity on the validation answers, the same scorer for every variant."""
    from tunelab.config.schema import DataConfig
    from tunelab.evaluation.scoring.causal_lm import score_lm_features
    from tunelab.tasks import causal_lm

    split = causal_lm.read_split("dev", str(dev_file), DataConfig(train=str(dev_file)))
    feats = causal_lm.featurize(split, tokenizer, MAX_LENGTH)
    return score_lm_features(model, feats, 8, tokenizer.pad_token_id)


def run_tunelab(train_file: Path, dev_file: Path, args, packing: bool) -> dict:
    from tunelab.api import train

    results = train(
        {
            "model": MODEL,
            "task": "causal-lm",
            "data": {
                "train": str(train_file),
                "validation": str(dev_file),
                "max_length": MAX_LENGTH,
                "packing": packing,
            },
            "method": {"name": "lora", "target_modules": "all-linear", **LORA},
            "train": {
                "epochs": args.epochs,
                "batch_size": args.tunelab_batch if packing else BATCH_ROWS,
                "lr": LR,
                "warmup_ratio": WARMUP_RATIO,
                "scheduler": "linear",
                "seed": SEED,
                "early_stopping": {"enabled": False},
            },
            "eval": {"few_shot": 0, "generate_rows": 0},
            "output": str(Path(args.workdir) / "tunelab-run"),
        },
        overwrite=True,
    )
    return {
        "train_seconds": results["timing"]["train_seconds"],
        "steps": results["run"]["steps"],
        "eval": {k: results["validation"][k] for k in ("loss", "perplexity", "tokens")},
    }


def run_trl(train_file: Path, dev_file: Path, args, fp32: bool) -> dict:
    """SFTTrainer + PEFT as its docs show, on prompt/completion conversations."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, set_seed
    from trl import SFTConfig, SFTTrainer

    set_seed(SEED)
    source, tokenizer = _source()
    model = AutoModelForCausalLM.from_pretrained(source.path)
    rows = [json.loads(x) for x in train_file.read_text().splitlines() if x.strip()]

    def user(r: dict) -> str:
        return f"{r['instruction']}\n\n{r['input']}" if r.get("input") else r["instruction"]

    data = Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": user(r)}],
                "completion": [{"role": "assistant", "content": r["output"]}],
            }
            for r in rows
        ]
    )
    params = inspect.signature(SFTConfig).parameters
    warmup = (
        {"warmup_ratio": WARMUP_RATIO}
        if "warmup_ratio" in params
        else {"warmup_steps": WARMUP_RATIO}
    )
    config = SFTConfig(
        output_dir=str(Path(args.workdir) / "trl-run"),
        per_device_train_batch_size=BATCH_ROWS,
        num_train_epochs=args.epochs,
        learning_rate=LR,
        lr_scheduler_type="linear",
        max_length=MAX_LENGTH,
        seed=SEED,
        logging_steps=10,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        dataloader_num_workers=0,
        **warmup,
        **({"bf16": False, "gradient_checkpointing": False} if fp32 else {}),
    )
    peft = LoraConfig(
        r=LORA["r"],
        lora_alpha=LORA["alpha"],
        lora_dropout=LORA["dropout"],
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    trainer = SFTTrainer(
        model=model, args=config, train_dataset=data, processing_class=tokenizer, peft_config=peft
    )
    out = trainer.train()
    merged = trainer.model.merge_and_unload()
    return {
        "train_seconds": float(out.metrics["train_runtime"]),
        "steps": int(out.global_step),
        "eval": eval_answers(merged, tokenizer, dev_file),
    }


def child_main(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    train_file, dev_file = Path(args.train_file), Path(args.dev_file)
    if args.variant.startswith("trl_sft"):
        row = run_trl(train_file, dev_file, args, fp32=args.variant == "trl_sft_fp32")
    else:
        row = run_tunelab(train_file, dev_file, args, packing=args.variant == "tunelab")
    row = {
        "variant": args.variant,
        **row,
        "tokens_per_s": args.train_tokens / row["train_seconds"],
        "peak_rss_mib": peak_rss_mib(),
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(row), flush=True)


# --------------------------------------------------------------------------- parent side


def write_rows(src: Path, n: int, dest: Path) -> int:
    lines = [x for x in src.read_text(encoding="utf-8").splitlines() if x.strip()]
    if n > len(lines):
        sys.exit(f"{src}: has {len(lines)} rows, fewer than the {n} asked for")
    dest.write_text("\n".join(lines[:n]) + "\n", encoding="utf-8")
    return n


def data_shape(train_file: Path) -> dict:
    """Real tokens of the training rows (after truncation) and how many packed sequences they
    fill, with tunelab's own rendering; these fix the numerator and tunelab's batch size."""
    from tunelab.config.schema import DataConfig
    from tunelab.tasks import causal_lm

    _, tokenizer = _source()
    split = causal_lm.read_split("train", str(train_file), DataConfig(train=str(train_file)))
    packed = causal_lm.featurize(split, tokenizer, MAX_LENGTH)
    rows = len(split)
    return {
        "rows": rows,
        "train_tokens": int(sum(packed.lengths)),
        "packed_sequences": len(packed),
        "tunelab_batch": max(1, round(BATCH_ROWS * len(packed) / rows)),
    }


def markdown(rows: list[dict], run: dict) -> str:
    m, s = run["machine"], run["settings"]
    v = m["versions"]
    lines = [
        f"## {run['date']} · {m['cpu']}, {m['cores']} cores, {m['ram_gib']:.1f} GiB RAM",
        "",
        f"torch {v['torch']}, transformers {v['transformers']}, peft {v['peft']}, "
        f"trl {v['trl']}, tunelab {v['tunelab']}, Python {m['python']}.",
        "",
        f"Settings: `{MODEL}`, LoRA r {LORA['r']} alpha {LORA['alpha']} dropout "
        f"{LORA['dropout']} on all linear layers; {s['train_rows']} training rows "
        f"({s['train_tokens']} real tokens, max length {MAX_LENGTH}), {s['dev_rows']} "
        f"validation rows; {s['epochs']} epoch(s), lr {LR}, linear schedule, warmup "
        f"{WARMUP_RATIO}; {BATCH_ROWS} rows per step for the unpacked variants, "
        f"{s['tunelab_batch']} packed sequences per step for tunelab "
        f"({s['packed_sequences']} sequences, about "
        f"{s['train_rows'] / s['packed_sequences'] * s['tunelab_batch']:.1f} rows per step); "
        "fp32 on CPU. Eval: loss on the validation answers (assistant tokens), one scorer.",
        "",
        "| variant | steps | train s | trained tokens/s | eval loss | eval ppl | peak RSS MiB "
        "| tunelab tokens/s ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    ref = next((r for r in rows if r["variant"] == "tunelab" and "error" not in r), None)
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['variant']} | failed: {r['error']} | | | | | | |")
            continue
        ratio = "(reference)" if r is ref else "n/a"
        if ref is not None and r is not ref:
            ratio = f"{ref['tokens_per_s'] / r['tokens_per_s']:.2f}x"
        lines.append(
            f"| {r['variant']} | {r['steps']} | {r['train_seconds']:.0f} "
            f"| {r['tokens_per_s']:.1f} | {r['eval']['loss']:.4f} | {r['eval']['perplexity']:.3f} "
            f"| {r['peak_rss_mib']:.0f} | {ratio} |"
        )
    lines += ["", f"Command: `{run['command']}`", ""]
    return "\n".join(lines)


def parent_main(args: argparse.Namespace) -> int:
    variants, run = start_run(
        "sft.py", args.variants, VARIANTS, ("torch", "transformers", "peft", "trl", "accelerate")
    )
    with tempfile.TemporaryDirectory(prefix="tunelab-bench-sft-") as tmp:
        work = Path(tmp)
        train, dev = work / "train.jsonl", work / "dev.jsonl"
        write_rows(DATA_DIR / "train.jsonl", args.train_rows, train)
        write_rows(DATA_DIR / "validation.jsonl", args.dev_rows, dev)
        shape = data_shape(train)
        run["settings"] = {
            "train_rows": args.train_rows,
            "dev_rows": args.dev_rows,
            "epochs": args.epochs,
            **shape,
        }
        print(
            f"{args.train_rows} rows, {shape['train_tokens']} tokens in "
            f"{shape['packed_sequences']} packed sequences; tunelab batch {shape['tunelab_batch']}"
        )
        rows = []
        for i, name in enumerate(variants, 1):
            print(f"[{i}/{len(variants)}] {name}", flush=True)
            cmd = [sys.executable, str(Path(__file__).resolve()), "--variant", name]
            cmd += ["--train-file", str(train), "--dev-file", str(dev), "--workdir", tmp]
            cmd += ["--epochs", str(args.epochs), "--train-tokens", str(shape["train_tokens"])]
            cmd += ["--tunelab-batch", str(shape["tunelab_batch"])]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            rows.append(
                run_child(
                    name,
                    cmd,
                    work,
                    lambda r: (
                        f"{r['tokens_per_s']:.1f} tokens/s, eval loss "
                        f"{r['eval']['loss']:.4f}, peak RSS {r['peak_rss_mib']:.0f} MiB"
                    ),
                )
            )
    run["results"] = rows
    return report("sft", "SFT benchmark (causal-lm LoRA)", markdown(rows, run), run, args.no_save)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="LoRA SFT of smollm2-135m-instruct on instruction rows: tunelab (packed, "
        "and unpacked) vs TRL SFTTrainer + PEFT; same data, settings and scorer.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--train-rows", type=int, default=64, help="default 64 (of 400)")
    parser.add_argument("--dev-rows", type=int, default=50, help="default 50 (all)")
    parser.add_argument("--epochs", type=float, default=1, help="default 1")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--no-save", action="store_true", help="print only")
    for flag in ("--variant", "--train-file", "--dev-file", "--workdir"):
        parser.add_argument(flag, help=argparse.SUPPRESS)
    parser.add_argument("--train-tokens", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tunelab-batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if min(args.train_rows, args.dev_rows) <= 0 or args.epochs <= 0 or math.isnan(args.epochs):
        parser.error("--train-rows, --dev-rows and --epochs must be > 0")
    if args.variant:
        child_main(args)
    else:
        sys.exit(parent_main(args))


if __name__ == "__main__":
    main()
