"""The `tunelab` command: parses arguments and calls the API. Nothing heavy at import time."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tunelab.cli.parser import GENERATION_FLAGS, build_parser


def _cmd_train(args) -> int:
    from tunelab import api
    from tunelab.evaluation.run_report.page import format_results_table

    results = api.train(
        args.config,
        args.overrides,
        overwrite=args.overwrite,
        resume=args.resume,
        preflight=not args.no_preflight,
        time_budget=args.time_budget,
    )
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    if results.get("search"):  # --time-budget: the trials, then the best one as a run
        from tunelab.runs.search_report import format_search_table

        search = json.loads(Path(results["search"]["file"]).read_text(encoding="utf-8"))
        print("\n" + format_search_table(search) + "\n")
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
    if results.get("search"):
        print(f"search: {results['search']['file']}")
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
    from tunelab.cli import models as cli_models

    return cli_models.main(args)


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


def _cmd_monitor(args) -> int:
    from tunelab.cli import monitor as cli_monitor

    return cli_monitor.main(args)


def _cmd_feedback(args) -> int:
    from tunelab.cli import feedback as cli_feedback

    return cli_feedback.main(args)


def _cmd_retrain(args) -> int:
    from tunelab.cli import retrain as cli_retrain

    return cli_retrain.main(args)


def _cmd_registry(args) -> int:
    from tunelab.cli import registry as cli_registry

    return cli_registry.main(args)


def _cmd_shadow(args) -> int:
    from tunelab.cli import shadow as cli_shadow

    return cli_shadow.main(args)


def _cmd_plan(args) -> int:
    from tunelab.cli import plan as cli_plan

    return cli_plan.main(args)


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
    "plan": _cmd_plan,
    "data": _cmd_data,
    "generate": _cmd_generate,
    "chat": _cmd_chat,
    "tune": _cmd_tune,
    "serve": _cmd_serve,
    "monitor": _cmd_monitor,
    "feedback": _cmd_feedback,
    "registry": _cmd_registry,
    "shadow": _cmd_shadow,
    "retrain": _cmd_retrain,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
