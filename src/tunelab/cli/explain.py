"""`tunelab explain`: argument parsing and printing; the work is in interpret/."""

from __future__ import annotations

import argparse
import json

EXAMPLES = """examples:
  tunelab explain runs/sst2 --text "a gripping, beautifully shot film"
  tunelab explain runs/sst2 --text "dull and far too long" --target positive --method ig --ig-steps 100
  tunelab explain runs/rte --text "A man sleeps." --pair "Someone is awake."
  tunelab explain runs/conll-ner --text "Angela Merkel visited Paris ."       # each entity
  tunelab explain runs/conll-ner --text "Angela Merkel visited Paris ." --word Paris
  tunelab explain runs/chat-sft --text "Name three fruits." --compare smollm2-135m-instruct
  tunelab explain runs/sst2 --text "a fine film" --compare runs/sst2-full --attention
  tunelab explain runs/sst2 --data validation.jsonl --global --rows 200 --top 15

Writes OUTPUT/explain.html + explain.json (global: global.html + global.json), default
OUTPUT runs/explain-<run name>. Red tokens raise the explained score (log-odds of the
class or tag, log-likelihood of a generated span), blue ones lower it. See docs/interpret.md."""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "explain",
        help="token attributions (IG, gradient x input, occlusion) as HTML + JSON",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "model",
        help="a run or model folder (classification, token-classification, "
        "causal-lm), or a loadable causal LM (alias, .gguf)",
    )
    p.add_argument("--text", action="append", default=[], help="a text to explain (repeatable)")
    p.add_argument(
        "--pair", action="append", default=None, help="second text of a pair, one per --text"
    )
    p.add_argument(
        "--method",
        default="ig,grad_x_input,occlusion",
        help="comma-separated: ig, grad_x_input, occlusion (default: all)",
    )
    p.add_argument(
        "--target",
        help="class (or tag) to explain instead of the predicted one; "
        "causal LM: a continuation text to score instead of generating",
    )
    p.add_argument(
        "--word",
        help="token classification: explain this word (or 0-based index) "
        "instead of each predicted entity",
    )
    p.add_argument(
        "--compare",
        help="explain the same decision with this model too (base vs "
        "fine-tuned): a run with the same labels, or the base causal LM",
    )
    p.add_argument(
        "--attention",
        action="store_true",
        help="also write attention maps (per layer/head PNG + HTML, rollout)",
    )
    p.add_argument("--output", help="folder for the report (default: runs/explain-<name>)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--ig-steps", type=int, help="IG integration steps (default 50; --global: 16 per row)"
    )
    p.add_argument(
        "--score",
        default="log_odds",
        choices=("log_odds", "log_prob", "prob", "logit"),
        help="classes/tags: what is explained of the target (default: log_odds; "
        "a causal LM's span is always its log-likelihood)",
    )
    p.add_argument(
        "--baseline",
        default="auto",
        help="baseline token: auto ([MASK], else pad), mask, pad, unk, eos, or a token string",
    )
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=32,
        help="causal LM: length of the greedy continuation explained (default 32)",
    )
    p.add_argument(
        "--per-token-method",
        default="grad_x_input",
        help="causal LM: method of the per-generated-token view (ig is G times "
        "slower; 'none' to skip)",
    )
    g = p.add_argument_group("global importance (classifier, over a data file)")
    g.add_argument(
        "--global",
        dest="global_",
        action="store_true",
        help="rank the words that push toward each class over --data",
    )
    g.add_argument("--data", help="data file for --global")
    g.add_argument("--text-column", help="--global: text column (default: the training one)")
    g.add_argument("--rows", type=int, default=200, help="--global: rows sampled (default 200)")
    g.add_argument("--top", type=int, default=15, help="--global: words per class (default 15)")
    g.add_argument(
        "--min-count",
        type=int,
        default=3,
        help="--global: ignore words seen fewer times (default 3)",
    )


def _methods(arg: str) -> list[str]:
    return [m.strip() for m in arg.split(",") if m.strip()]


def main(args) -> int:
    from tunelab import api
    from tunelab.errors import ConfigError
    from tunelab.interpret.explain import default_output

    output = args.output or str(default_output(args.model))
    if args.global_:
        if not args.data:
            raise ConfigError("--data", "--global needs a data file: --data FILE")
        methods = _methods(args.method)
        if len(methods) != 1:  # default list: IG (gradient x input was noise on SST-2)
            methods = ["ig"]
        rep = api.global_importance(
            args.model,
            args.data,
            text=args.text_column,
            rows=args.rows,
            top=args.top,
            min_count=args.min_count,
            method=methods[0],
            ig_steps=args.ig_steps or 16,
            baseline=args.baseline,
            output=output,
        )
        if args.json:
            print(json.dumps(rep, indent=2))
            return 0
        for cls, words in rep["classes"].items():
            shown = "  ".join(
                f"{w['word']}({w['mean']:+.3f}, {w['pushes']}/{w['count']})" for w in words[:10]
            )
            print(f"toward {cls}: {shown or '-'}")
        print(f"\nreport: {output}/global.html")
        return 0
    if not args.text:
        raise ConfigError("--text", "give --text TEXT (repeatable), or --global --data FILE")
    per_token = None if args.per_token_method == "none" else args.per_token_method
    rep = api.explain(
        args.model,
        args.text,
        pairs=args.pair,
        methods=_methods(args.method),
        target=args.target,
        word=args.word,
        compare=args.compare,
        attention=args.attention,
        output=output,
        ig_steps=args.ig_steps or 50,
        score=args.score,
        baseline=args.baseline,
        max_new_tokens=args.max_new_tokens,
        per_token_method=per_token,
    )
    if args.json:
        print(json.dumps(rep, indent=2))
        return 0
    print_summary(rep)
    print(f"\nreport: {output}/explain.html")
    return 0


def print_summary(rep: dict) -> None:
    """Per text and explained unit: the decision and the top words of the first method."""
    method = rep["methods"][0]
    for i, t in enumerate(rep["texts"]):
        print(f"[{i + 1}] {t['text']}")
        blocks = [("", t)] + ([("  compare ", t["compare"])] if "compare" in t else [])
        for tag, block in blocks:
            p = block["prediction"]
            if "label" in p:
                print(f"  {tag}predicted {p['label']} ({p['score']:.3f})  [{block['model']}]")
            elif "generated" in p:
                print(f"  {tag}span: {p['generated']!r}  [{block['model']}]")
            if not block["units"]:
                print(f"  {tag}no entity predicted; pick a word with --word")
            for u in block["units"]:
                top = "  ".join(f"{w}({v:+.3f})" for w, v in u["top"][method])
                print(f"  {tag}{u['name']} <- {method}: {top}")
