"""The `tunelab` argument parser: one function per command, the examples of each --help."""

from __future__ import annotations

import argparse

from tunelab.cli import data as cli_data
from tunelab.cli import explain as cli_explain
from tunelab.cli import export as cli_export
from tunelab.cli import feedback as cli_feedback
from tunelab.cli import monitor as cli_monitor
from tunelab.cli import plan as cli_plan
from tunelab.cli import registry as cli_registry
from tunelab.cli import retrain as cli_retrain
from tunelab.cli import serve as cli_serve
from tunelab.cli import shadow as cli_shadow
from tunelab.config.keys import format_keys

EXAMPLES = {
    "train": """examples:
  tunelab train examples/sst2.yaml
  tunelab train examples/sst2.yaml train.epochs=2 method.name=full
  tunelab train examples/sst2.yaml --resume          # continue after Ctrl-C
  tunelab train examples/sst2_tune.yaml train.folds=3 data.validation=null   # 3-fold CV
  tunelab train examples/sst2.yaml method.name=dora   # full freeze lora dora qlora ia3 adapter prefix prompt
  tunelab train examples/distill_sst2.yaml           # procedure: distill | multitask | adversarial | continual
  tunelab train examples/sst2.yaml --no-preflight    # train even if `tunelab plan` says it won't fit
  tunelab train examples/sst2.yaml --time-budget 10m   # best of method/lr/epochs found in 10 min (600, 90s, 1h)

Overrides are dotted config keys: data.max_length=64 train.lr=1e-4 method.r=8.
Config keys (docs/config.md says what each does):
{keys}""",
    "predict": """examples:
  tunelab predict runs/sst2/model --text "a gripping, beautifully shot film"
  tunelab predict runs/sst2 --text "great" --text "dull" --json
  tunelab predict runs/rte/model --text "A man sleeps." --pair "Someone is awake."
  tunelab predict runs/sst2/model --file reviews.csv --column review --json
  tunelab predict runs/conll-ner/model --text "Angela Merkel visited Paris ."   # entities with spans
  tunelab predict runs/squad --question "Who won?" --context "Denver beat Carolina 24-10."
  tunelab predict runs/summarize --text "a long article ..." --max-new-tokens 64   # seq2seq: the output
generation flags (seq2seq) update the run's own generation: settings (greedy by default)""",
    "eval": """examples:
  tunelab eval runs/sst2 --data examples/data/sst2/test.jsonl    # report.html + report.json
  tunelab eval runs/sst2 --data test.jsonl --compare runs/sst2-full --name lora --name full
  tunelab eval runs/chat-sft --data examples/data/instructions/validation.jsonl --compare smollm2-135m-instruct
  tunelab eval runs/sst2 --data reviews.csv --group domain       # metrics per domain + gap
  tunelab eval runs/sst2/model --data data.csv --json --bootstrap 2000 --output /tmp/eval
  tunelab eval runs/sst2/model --data data.csv --text-column review --label-column stars
  tunelab eval runs/sst2 --data validation.jsonl --robustness          # typo/synonym/drop/greedy
  tunelab eval runs/sst2 --data validation.jsonl --robustness --attacks typo,greedy --rows 200 --json""",
    "generate": """examples:
  tunelab generate smollm2-135m-instruct --prompt "What is the capital of France?"
  tunelab generate runs/chat-sft --prompt "Give three tips for sleeping well." --max-new-tokens 64
  tunelab generate runs/chat-sft --prompt "Write a haiku" --temperature 0.7 --top-p 0.9 --json
  tunelab generate runs/chat-sft --prompt "List three fruits" --num-beams 4 --stop "\\n\\n"
  tunelab generate runs/de-en --prompt "Ein Mann schläft ."        # a seq2seq run: its output
unset flags keep the run's own generation: settings (config), else the defaults""",
    "chat": """examples:
  tunelab chat smollm2-135m-instruct
  tunelab chat runs/chat-sft --temperature 0.7 --system "You answer in one sentence."
  (type /reset to clear the conversation, /exit or Ctrl-D to leave)""",
    "tune": """examples:
  tunelab tune examples/sst2_tune.yaml --trials 6
  tunelab tune examples/sst2_tune.yaml --trials 50 --timeout 3600 --output runs/sst2-search
  tunelab tune examples/sst2_tune.yaml --trials 6 search.sampler=random --overwrite
  tunelab train runs/sst2-tune/best_config.yaml          # retrain the best trial's config

The config's search: section says what to search (keys are dotted config paths):
  search:
    metric: null            # default: train.early_stopping.metric
    sampler: tpe            # tpe | random
    pruner: median          # median | none
    space:
      train.lr: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}
      train.batch_size: {type: categorical, choices: [16, 32]}
      method.r: {type: int, low: 4, high: 32, log: true}
Writes OUTPUT/trial-NNN/ (one run each), search.json, best_config.yaml, search.png.""",
    "models": """examples:
  tunelab models
  tunelab models --task classification --fits
  tunelab models --task causal-lm --path ./my-model --json""",
}


GENERATION_FLAGS = ("max_new_tokens", "temperature", "top_p", "top_k", "num_beams")
GENERATION_FLAGS += ("repetition_penalty", "stop", "seed")


def build_parser() -> argparse.ArgumentParser:
    """The whole `tunelab` parser: every command with its flags and an example epilog."""

    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(
        prog="tunelab",
        description="Fine-tune pretrained language models and take them to production.",
        epilog='examples:\n  tunelab train examples/sst2.yaml\n  tunelab predict runs/sst2/model --text "a gripping film"\n  tunelab data inspect data.csv --text review\n  tunelab models',
        formatter_class=fmt,
    )
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    _train(sub, fmt)
    _predict(sub, fmt)
    _eval(sub, fmt)
    _tune(sub, fmt)
    cli_data.add_parser(sub)
    cli_serve.add_parser(sub)
    cli_monitor.add_parser(sub)
    cli_feedback.add_parser(sub)
    cli_registry.add_parser(sub)
    cli_shadow.add_parser(sub)
    cli_retrain.add_parser(sub)
    cli_explain.add_parser(sub)
    cli_export.add_parser(sub)
    _generate(sub, fmt)
    _chat(sub, fmt)
    _models(sub, fmt)
    cli_plan.add_parser(sub)
    return p


def _train(sub, fmt) -> None:
    t = sub.add_parser(
        "train",
        help="fine-tune a model as a YAML config says",
        epilog=EXAMPLES["train"].format(keys=format_keys()),
        formatter_class=fmt,
    )
    t.add_argument("config", help="run config (YAML)")
    t.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in the output folder from its last checkpoint",
    )
    t.add_argument(
        "--overwrite", action="store_true", help="replace whatever the output folder holds"
    )
    t.add_argument("--json", action="store_true", help="print results as JSON")
    t.add_argument(
        "--no-preflight",
        action="store_true",
        help="train even when the memory estimate says the run will not fit (tunelab plan)",
    )
    t.add_argument(
        "--time-budget",
        metavar="DURATION",
        help="search method, lr and epochs (Optuna, pruned) within this wall-clock time (600, "
        "90s, 10m, 1h) and keep the best on validation as the run; a config with search: is "
        "searched over its own space",
    )


def _predict(sub, fmt) -> None:
    pr = sub.add_parser(
        "predict",
        help="label texts with a trained model (seq2seq: generate their outputs)",
        epilog=EXAMPLES["predict"],
        formatter_class=fmt,
    )
    pr.add_argument("model", help="a model folder, or a run folder (uses its model/)")
    pr.add_argument("--text", action="append", default=[], help="a text to label (repeatable)")
    pr.add_argument(
        "--pair", action="append", default=None, help="second text of a pair, one per --text"
    )
    pr.add_argument(
        "--question", action="append", default=[], help="a question to answer (repeatable)"
    )
    pr.add_argument(
        "--context", action="append", default=[], help="the context of each --question, in order"
    )
    pr.add_argument(
        "--file",
        help="a data file of texts to label (of question/context rows for a question answerer)",
    )
    pr.add_argument(
        "--column", help="text column of --file (default: the one the model trained on)"
    )
    pr.add_argument("--batch-size", type=int, default=64)
    pr.add_argument("--json", action="store_true", help="print JSON lines")
    _generation_flags(pr)


def _eval(sub, fmt) -> None:
    ev = sub.add_parser(
        "eval",
        help="score a trained model on labelled data",
        epilog=EXAMPLES["eval"],
        formatter_class=fmt,
    )
    ev.add_argument(
        "model", help="a run folder, a model folder, or a base model (alias, .gguf, hub id)"
    )
    ev.add_argument(
        "--data", required=True, help="labelled file (.csv .tsv .jsonl .json .parquet or HF dir)"
    )
    ev.add_argument(
        "--text-column",
        metavar="COL",
        help="column of --data holding the text (default: the column the model was trained on)",
    )
    ev.add_argument(
        "--pair-column",
        metavar="COL",
        help="column holding the second text of a pair (default: as trained)",
    )
    ev.add_argument(
        "--label-column",
        metavar="COL",
        help="column holding the label (default: as trained)",
    )
    ev.add_argument(
        "--split", default="test", help="what the data is, as report.json names it (default: test)"
    )
    ev.add_argument("--batch-size", type=int, default=64)
    ev.add_argument("--json", action="store_true", help="print report.json")
    ev.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="MODEL",
        help="another model scored on the same rows, tested against MODEL (repeatable)",
    )
    ev.add_argument(
        "--name",
        action="append",
        default=None,
        help="display name of MODEL, then of each --compare (default: the folder name)",
    )
    ev.add_argument("--group", metavar="COL", help="column of --data: metrics per value (slices)")
    ev.add_argument("--output", help="folder for report.json/html (default: RUN/eval-<data stem>/)")
    ev.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        help="bootstrap resamples for intervals and tests (default 1000; 0: none)",
    )
    ev.add_argument(
        "--generate-rows",
        type=int,
        default=32,
        help="causal-lm/seq2seq: generate for the first N rows (default 32; -1: all)",
    )
    ev.add_argument(
        "--robustness",
        action="store_true",
        help="accuracy under perturbation attacks instead of the metrics (classification)",
    )
    ev.add_argument(
        "--attacks",
        default="typo,synonym,drop,greedy",
        help="--robustness: comma-separated attacks (default: typo,synonym,drop,greedy)",
    )
    ev.add_argument("--rows", type=int, help="--robustness: attack the first N rows only")
    ev.add_argument(
        "--seed", type=int, default=0, help="seed of the bootstrap (--robustness: of the edits)"
    )


def _tune(sub, fmt) -> None:
    tu = sub.add_parser(
        "tune",
        help="hyperparameter search over the config's search: space (Optuna)",
        epilog=EXAMPLES["tune"],
        formatter_class=fmt,
    )
    tu.add_argument("config", help="run config (YAML) with a search: section")
    tu.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    tu.add_argument("--trials", type=int, required=True, help="number of trials (runs)")
    tu.add_argument(
        "--timeout", type=float, help="seconds; no new trial starts after this (default: none)"
    )
    tu.add_argument("--output", help="folder for the trials and results (default: output:)")
    tu.add_argument("--overwrite", action="store_true", help="replace what the folder holds")
    tu.add_argument("--verbose", action="store_true", help="show each trial's training output")
    tu.add_argument("--json", action="store_true", help="print search.json")


def _generate(sub, fmt) -> None:
    g = sub.add_parser(
        "generate",
        help="complete prompts with a causal LM (or a seq2seq model: its outputs)",
        epilog=EXAMPLES["generate"],
        formatter_class=fmt,
    )
    g.add_argument(
        "model",
        help="a causal-lm or seq2seq run or model folder, or any loadable model (alias, "
        "folder, .gguf)",
    )
    g.add_argument("--prompt", action="append", required=True, help="a prompt (repeatable)")
    _generation_flags(g)
    g.add_argument("--json", action="store_true")


def _chat(sub, fmt) -> None:
    c = sub.add_parser(
        "chat",
        help="talk to a causal LM, replies streamed",
        epilog=EXAMPLES["chat"],
        formatter_class=fmt,
    )
    c.add_argument("model", help="a causal-lm run or model folder, or any loadable chat model")
    _generation_flags(c)
    c.add_argument("--system", help="a system message")


def _models(sub, fmt) -> None:
    m = sub.add_parser(
        "models",
        help="the models to pick from: tasks, size, license, loadable here, ranked",
        epilog=EXAMPLES["models"],
        formatter_class=fmt,
    )
    m.add_argument("--json", action="store_true")
    m.add_argument("--task", help="only models that fit this task (classification, causal-lm, ...)")
    m.add_argument("--fits", action="store_true", help="only models loadable here that fit memory")
    m.add_argument("--path", action="append", help="also a local HF folder or .gguf (repeatable)")


def _generation_flags(p: argparse.ArgumentParser) -> None:
    """Flags over the `generation:` settings; unset ones keep a run's own (or the defaults)."""
    p.add_argument("--max-new-tokens", type=int, help="default 128 (or the run's)")
    p.add_argument("--temperature", type=float, help="0: greedy (default); > 0: sampling")
    p.add_argument("--top-p", type=float, help="sampling: nucleus share (default 1.0)")
    p.add_argument("--top-k", type=int, help="sampling: keep the k likeliest tokens")
    p.add_argument("--num-beams", type=int, help="beam search width (greedy only)")
    p.add_argument("--repetition-penalty", type=float)
    p.add_argument(
        "--stop", action="append", help="stop at this string, cut from the output (repeatable)"
    )
    p.add_argument("--seed", type=int, help="sampling: fix the random seed")
