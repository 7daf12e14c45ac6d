"""The `tunelab` command: parses arguments and calls the API. Nothing heavy at import time."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXAMPLES = {
    "train": """examples:
  tunelab train examples/sst2.yaml
  tunelab train examples/sst2.yaml train.epochs=2 method.name=full
  tunelab train examples/sst2.yaml --resume          # continue after Ctrl-C
  tunelab train examples/sst2_tune.yaml train.folds=3 data.validation=null   # 3-fold CV
  tunelab train examples/sst2.yaml method.name=dora   # full freeze lora dora qlora ia3 adapter prefix prompt
  tunelab train examples/distill_sst2.yaml           # procedure: distill | multitask | adversarial | continual

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
  tunelab models --json""",
}


def _parser() -> argparse.ArgumentParser:
    from tunelab.config.keys import format_keys  # the keys of the schema, for train --help

    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(
        prog="tunelab",
        description="Fine-tune pretrained language models and take them to production.",
        epilog='examples:\n  tunelab train examples/sst2.yaml\n  tunelab predict runs/sst2/model --text "a gripping film"\n  tunelab data inspect data.csv --text review\n  tunelab models',
        formatter_class=fmt,
    )
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

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

    from tunelab.cli import data as cli_data

    cli_data.add_parser(sub)
    from tunelab.cli import serve as cli_serve

    cli_serve.add_parser(sub)
    from tunelab.cli import explain as cli_explain

    cli_explain.add_parser(sub)
    from tunelab.cli import export as cli_export

    cli_export.add_parser(sub)

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

    c = sub.add_parser(
        "chat",
        help="talk to a causal LM, replies streamed",
        epilog=EXAMPLES["chat"],
        formatter_class=fmt,
    )
    c.add_argument("model", help="a causal-lm run or model folder, or any loadable chat model")
    _generation_flags(c)
    c.add_argument("--system", help="a system message")

    m = sub.add_parser(
        "models",
        help="the models tunelab can load here",
        epilog=EXAMPLES["models"],
        formatter_class=fmt,
    )
    m.add_argument("--json", action="store_true")
    return p


def _cmd_train(args) -> int:
    from tunelab import api
    from tunelab.evaluation.run_report.page import format_results_table

    results = api.train(args.config, args.overrides, overwrite=args.overwrite, resume=args.resume)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    if "per_fold" in results:  # train.folds: k-fold cross-validation
        from tunelab.runs.kfold import format_folds_table

        print(format_folds_table(results))
        print(f"\nfolds: {Path(results['output']) / 'folds.json'}")
        return 0
    from tunelab.config.run_result import run_result

    result = run_result(results)  # the dict results.json holds, typed
    run, t = result.run, result.timing
    if run.task == "multitask":  # one shared encoder, a model folder per task
        from tunelab.runs.multitask import format_multitask_table

        print(format_multitask_table(results))
        print(f"\ntrained {run.steps} steps in {t.train_seconds:.0f}s")
        print("models: " + ", ".join((run.models or {}).values()))
        return 0
    split = result.last_split
    from tunelab.tasks import get_task

    if get_task(run.task).head_kind == "sequence":
        print(format_results_table(results, split))
    else:
        rows = [("fine-tuned", results.get(split, {}))] + [
            (name, b.get(split, {})) for name, b in results.get("baselines", {}).items()
        ]
        keys = [
            k for k, v in results.get(split, {}).items() if isinstance(v, (int, float)) and k != "n"
        ][:6]
        print(f"{split}\n{'model':14s} " + " ".join(f"{k:>14s}" for k in keys))
        for name, m in rows:
            cells = [
                f"{'-':>14s}"
                if k not in m
                else f"{m[k]:14d}"
                if isinstance(m[k], int)
                else f"{m[k]:14.4f}"
                for k in keys
            ]
            print(f"{name:14s} " + " ".join(cells))
    out = Path(run.output)
    rate = t.samples_per_s
    print(
        f"\ntrained {run.steps} steps in {t.train_seconds:.0f}s ({rate:.{0 if rate >= 10 else 2}f} samples/s)"
    )
    print(f"model:  {out / 'model'}\nreport: {out / 'report.html'}")
    return 0


def _cmd_tune(args) -> int:
    from tunelab import api
    from tunelab.runs.search_report import format_search_table

    summary = api.tune(
        args.config,
        args.overrides,
        trials=args.trials,
        timeout=args.timeout,
        output=args.output,
        overwrite=args.overwrite,
        verbose=args.verbose,
    )
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    out = Path(summary["output"])
    print("\n" + format_search_table(summary))
    if summary.get("best"):
        print(
            f"\nbest config: {summary['best']['config']}  (tunelab train {summary['best']['config']})"
        )
    print(f"results: {out / 'search.json'}\nplot:    {out / 'search.png'}")
    return 0


def _cmd_predict(args) -> int:
    from tunelab import api

    texts, pairs = list(args.text), args.pair
    if (
        args.question or args.context
    ):  # a span model: the text is the question, the pair its context
        if len(args.context) != len(args.question):
            raise SystemExit(
                f"error: {len(args.context)} --context for {len(args.question)} --question; "
                "give one --context per --question"
            )
        texts, pairs = texts + list(args.question), (pairs or []) + list(args.context)
    if args.file:
        from tunelab.data import read_table, text_column
        from tunelab.methods.loading import read_meta

        meta = read_meta(args.model)
        cols = meta.columns if meta else {}
        df = read_table(args.file)
        if "question" in cols and "context" in cols:  # question/context rows
            texts += text_column(df, args.file, cols["question"])
            pairs = (pairs or []) + text_column(df, args.file, cols["context"])
        else:
            texts += text_column(df, args.file, args.column or cols.get("text", "text"))
    if not texts:
        raise SystemExit("error: give --text TEXT (repeatable) or --file FILE")
    if pairs is not None and len(pairs) != len(texts):
        raise SystemExit(
            f"error: {len(pairs)} --pair for {len(texts)} texts; give one --pair per --text"
        )
    flags = {k: getattr(args, k) for k in GENERATION_FLAGS if getattr(args, k) is not None}
    if flags.get("stop"):
        flags["stop"] = _unescape(flags["stop"])
    preds = api.predict(args.model, texts, pairs, args.batch_size, **flags)
    for text, pred in zip(texts, preds):
        if args.json:
            print(json.dumps({"text": text, **pred}))
        elif "answer" in pred:
            print(
                f"{pred['answer'] or '-'}\t{pred['start']}:{pred['end']}\t{pred['score']:.4f}\t{text}"
            )
        elif "generated" in pred:
            print(f"{pred['generated']}\t{text}")
        elif "entities" in pred:
            shown = ", ".join(
                f"{e['text']} [{e['type']} {e['start']}:{e['end']}]" for e in pred["entities"]
            )
            print(f"{shown or '-'}\t{text}")
        elif "label" in pred:
            print(f"{pred['label']}\t{pred['score']:.4f}\t{text}")
        else:
            print(f"{','.join(pred['labels']) or '-'}\t{text}")
    return 0


def _cmd_eval(args) -> int:
    from tunelab import api

    if args.robustness:
        from tunelab.evaluation.robustness.attack import format_table

        result = api.robustness(
            args.model,
            args.data,
            attacks=[a.strip() for a in args.attacks.split(",") if a.strip()],
            rows=args.rows,
            seed=args.seed,
            text=args.text_column,
            text_pair=args.pair_column,
            label=args.label_column,
            batch_size=args.batch_size,
        )
        print(json.dumps(result, indent=2) if args.json else format_table(result))
        return 0
    from tunelab.evaluation.report.table import format_report_table

    report = api.evaluate_report(
        args.model,
        args.data,
        compare=args.compare,
        names=args.name,
        group=args.group,
        output=args.output,
        bootstrap=args.bootstrap,
        seed=args.seed,
        batch_size=args.batch_size,
        text=args.text_column,
        text_pair=args.pair_column,
        label=args.label_column,
        generate_rows=None if args.generate_rows < 0 else args.generate_rows,
        split=args.split,
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    out = Path(report["output"])
    print(format_report_table(report))
    print(f"\nreport: {out / 'report.html'}\njson:   {out / 'report.json'}")
    return 0


def _cmd_models(args) -> int:
    from tunelab.models.catalog import list_models

    rows = list_models()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':24s} {'kind':10s} {'params':>8s} {'disk':>9s}  source")
    for r in rows:
        params = f"{r['params'] / 1e6:.1f}M" if r["params"] else "-"
        disk = f"{r['disk_mb']:.0f} MB" if r["disk_mb"] else "-"
        state = "" if r["installed"] else "  (not installed)"
        print(f"{r['name']:24s} {r['kind']:10s} {params:>8s} {disk:>9s}  {r['source']}{state}")
        if r.get("note"):
            print(f"{'':24s} {r['note']}")
    print(
        "\nAlso loadable: a local Hugging Face model folder, a .gguf file, or a hub id where the hub is reachable."
    )
    return 0


GENERATION_FLAGS = ("max_new_tokens", "temperature", "top_p", "top_k", "num_beams")
GENERATION_FLAGS += ("repetition_penalty", "stop", "seed")


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


def _generation(args):
    from tunelab.api import generation_config

    flags = {k: getattr(args, k) for k in GENERATION_FLAGS}
    if flags["stop"]:
        flags["stop"] = _unescape(flags["stop"])
    return generation_config(args.model, **flags)


def _unescape(stops: list[str]) -> list[str]:
    """A shell passes "\\n" as two characters; a user means a newline."""
    return [s.replace("\\n", "\n").replace("\\t", "\t") for s in stops]


def _cmd_generate(args) -> int:
    from tunelab import api

    outs = api.generate(args.model, args.prompt, _generation(args))
    for prompt, out in zip(args.prompt, outs):
        print(json.dumps({"prompt": prompt, "completion": out}) if args.json else out)
    return 0


def _cmd_chat(args) -> int:
    from tunelab.api import load_causal_lm
    from tunelab.inference.generation import chat_loop

    gen = _generation(args)
    model, tokenizer = load_causal_lm(args.model)
    chat_loop(model, tokenizer, gen, system=args.system)
    return 0


def _cmd_data(args) -> int:
    from tunelab.cli import data as cli_data

    return cli_data.main(args)


def _cmd_serve(args) -> int:
    from tunelab.cli import serve as cli_serve

    return cli_serve.main(args)


def _cmd_explain(args) -> int:
    from tunelab.cli import explain as cli_explain

    return cli_explain.main(args)


def _cmd_export(args) -> int:
    from tunelab.cli import export as cli_export

    return cli_export.main(args)


COMMANDS = {
    "export": _cmd_export,
    "explain": _cmd_explain,
    "train": _cmd_train,
    "predict": _cmd_predict,
    "eval": _cmd_eval,
    "models": _cmd_models,
    "data": _cmd_data,
    "generate": _cmd_generate,
    "chat": _cmd_chat,
    "tune": _cmd_tune,
    "serve": _cmd_serve,
}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        import tunelab

        print(f"tunelab {tunelab.__version__}")
        return 0
    if not args.command:
        parser.print_help()
        return 2
    from tunelab.errors import TunelabError

    try:
        return COMMANDS[args.command](args)
    except TunelabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
