"""`tunelab data inspect|prepare|preview`: argument parsing and printing; work is in data/."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EXAMPLES = {
    "inspect": """examples:
  tunelab data inspect ../shared/datasets/sst2/train.jsonl --text sentence --label label_text
  tunelab data inspect reviews.csv --text review --label stars --group country --model all-minilm-l6-v2
  tunelab data inspect train.jsonl --against validation.jsonl --against test.jsonl --json""",
    "prepare": """examples:
  tunelab data prepare examples/sst2_prepare.yaml
  tunelab data prepare examples/sst2_prepare.yaml data.prepare.split.ratios='{train: 0.7, validation: 0.15, test: 0.15}'
  tunelab data prepare examples/sst2_prepare.yaml --force --json""",
    "preview": """examples:
  tunelab data preview examples/sst2.yaml -n 5
  tunelab data preview examples/sst2.yaml --split test -n 3 --json""",
}
TEXT_GUESSES = ("text", "sentence", "document", "content", "review", "question", "src")
LABEL_GUESSES = ("label", "labels", "label_text", "category", "class", "target")


def add_parser(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    d = sub.add_parser(
        "data",
        help="inspect, prepare and preview data",
        formatter_class=fmt,
        epilog="\n\n".join(EXAMPLES.values()),
    )
    dsub = d.add_subparsers(dest="data_command", metavar="STEP")

    i = dsub.add_parser(
        "inspect",
        help="report on a data file (HTML + JSON)",
        epilog=EXAMPLES["inspect"],
        formatter_class=fmt,
    )
    i.add_argument("file")
    i.add_argument("--text", help=f"text column (default: first of {', '.join(TEXT_GUESSES)})")
    i.add_argument("--pair", help="second text column (sentence pairs)")
    i.add_argument(
        "--label", help=f"label column (default: first of {', '.join(LABEL_GUESSES)}, if any)"
    )
    i.add_argument("--group", help="column for the per-group label balance (bias) check")
    i.add_argument(
        "--model", help="count tokens with this model's tokenizer (alias, folder, .gguf, hub id)"
    )
    i.add_argument(
        "--max-length",
        type=int,
        help="token limit for the truncation share (default: the model's, <= 512)",
    )
    i.add_argument(
        "--against",
        action="append",
        default=[],
        help="another split to check for leakage (repeatable)",
    )
    i.add_argument(
        "--out", help="folder for report.html/report.json (default: runs/inspect-<file stem>)"
    )
    i.add_argument("--json", action="store_true", help="print the report as JSON")

    p = dsub.add_parser(
        "prepare",
        help="clean, dedup, anonymize, split, balance, augment",
        epilog=EXAMPLES["prepare"],
        formatter_class=fmt,
    )
    p.add_argument("config")
    p.add_argument("overrides", nargs="*")
    p.add_argument(
        "--force",
        action="store_true",
        help="run even if the fingerprint says the output is current",
    )
    p.add_argument("--json", action="store_true")

    v = dsub.add_parser(
        "preview",
        help="rows as the model will see them",
        epilog=EXAMPLES["preview"],
        formatter_class=fmt,
    )
    v.add_argument("config")
    v.add_argument("overrides", nargs="*")
    v.add_argument("-n", type=int, default=5, help="rows to show (default 5)")
    v.add_argument("--split", default="train")
    v.add_argument("--json", action="store_true")
    d.set_defaults(data_parser=d)


def _guess(df, wanted: str | None, guesses: tuple[str, ...], required: bool) -> str | None:
    if wanted:
        return wanted
    for name in guesses:
        if name in df.columns:
            return name
    if required:
        from tunelab.errors import DataError

        raise DataError(
            df.attrs["source"], f"no text column among {', '.join(guesses)}; give --text COLUMN"
        )
    return None


def cmd_inspect(args) -> int:
    from tunelab.data.inspect import inspect_frame
    from tunelab.data.readers import read_table
    from tunelab.data.report import format_summary, write_data_report

    df = read_table(args.file)
    text = _guess(df, args.text, TEXT_GUESSES, required=True)
    label = _guess(df, args.label, LABEL_GUESSES, required=False)
    tokenizer = None
    if args.model:
        from tunelab.models.loading import load_tokenizer
        from tunelab.models.sources import resolve_model

        tokenizer = load_tokenizer(resolve_model(args.model))
    others = {Path(f).stem: read_table(f) for f in args.against}
    report = inspect_frame(
        df,
        text,
        label,
        text_pair=args.pair,
        group=args.group,
        tokenizer=tokenizer,
        max_length=args.max_length,
        others=others,
    )
    out = Path(args.out or Path("runs") / f"inspect-{Path(args.file).stem}")
    json_path, html_path = write_data_report(
        report, out, title=f"tunelab data inspect: {args.file}"
    )
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(format_summary(report))
        print(f"\nreport: {html_path}\njson:   {json_path}")
    return 0


def cmd_prepare(args) -> int:
    from tunelab.config import load_config
    from tunelab.data.prepare import prepare
    from tunelab.data.report import format_summary
    from tunelab.errors import ConfigError

    cfg = load_config(args.config, args.overrides)
    if cfg.data.prepare is None:
        raise ConfigError(
            "data.prepare", "the config has no data.prepare section (see docs/data.md)"
        )
    result = prepare(cfg.data, cfg.output, force=args.force)
    if args.json:
        print(json.dumps(result.report, indent=2, default=str))
        return 0
    print(format_summary(result.report))
    for name, path in result.files.items():
        print(f"{name:<10s} {result.report['prepare']['splits'][name]['rows']:>8,} rows  {path}")
    print(f"report:    {result.out_dir / 'report.html'}")
    return 0


def cmd_preview(args) -> int:
    from tunelab.config import load_config
    from tunelab.runs.preview import preview_rows

    rows = preview_rows(load_config(args.config, args.overrides), args.split, args.n)
    for r in rows:
        if args.json:
            print(json.dumps(r))
            continue
        cut = "  [truncated]" if r["truncated"] else ""
        if "rendered" in r:  # causal-lm: trained tokens in «…»
            print(
                f"row {r['row']}  format={r['format']}  tokens={r['n_tokens']}  trained={r['trained_tokens']}{cut}"
            )
            print(f"{r['rendered']}\n")
            continue
        print(f"row {r['row']}  label={r['label']}  tokens={r['n_tokens']}{cut}")
        print(f"  text:   {r['text']}")
        if r["text_pair"]:
            print(f"  pair:   {r['text_pair']}")
        print(f"  model:  {' '.join(r['tokens'])}\n")
    return 0


def main(args) -> int:
    command = {"inspect": cmd_inspect, "prepare": cmd_prepare, "preview": cmd_preview}.get(
        args.data_command
    )
    if command is None:
        args.data_parser.print_help()
        return 2
    return command(args)
