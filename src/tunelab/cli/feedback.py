"""`tunelab feedback import FILE` / `tunelab feedback list`: answers about logged inputs, in
bulk, beside the prediction log (store/feedback.py; POST /v1/feedback takes them one by one)."""

from __future__ import annotations

import argparse
import json
import sys

EXAMPLES = """examples:
  tunelab feedback import labels.csv                 # columns: request_id,label
  tunelab feedback import answers.jsonl --db postgresql://user:pw@db/tunelab
  tunelab feedback list --model sst2 --json | jq '.[0]'

Columns (CSV/TSV/JSONL/JSON/parquet): request_id (the X-Request-Id or data[i].id the server
returned) and any of label, entities (JSON list of {start, end, label}), ideal_answer, rating,
metadata (a JSON object). Every row is checked first; any error names the file, the row and the
column, exits 2 and stores nothing. A second answer about an input becomes its next version.
Docs: docs/monitoring.md#feedback."""

DB_HELP = "the prediction log's database (default: $TUNELAB_DB, else sqlite:///tunelab.db)"


def add_parser(sub) -> None:
    f = sub.add_parser(
        "feedback",
        help="true labels / ideal answers / ratings for logged predictions",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = f.add_subparsers(dest="feedback_command", metavar="VERB", required=True)
    imp = verbs.add_parser(
        "import",
        help="store the answers of a file (all rows or none)",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imp.add_argument("file", metavar="FILE", help="CSV, TSV, JSONL, JSON or parquet")
    imp.add_argument("--db", metavar="URL", help=DB_HELP)
    imp.add_argument("--json", action="store_true", help="print the summary as JSON")
    ls = verbs.add_parser(
        "list",
        help="the stored answers, oldest first",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ls.add_argument("--model", help="only answers about this served model's predictions")
    ls.add_argument("--db", metavar="URL", help=DB_HELP)
    ls.add_argument("--json", action="store_true", help="print the answers as JSON")


def _import(args, engine) -> int:
    from tunelab.store.feedback_import import ImportErrors, import_feedback

    try:
        summary = import_feedback(engine, args.file)
    except ImportErrors as exc:
        for line in exc.lines():
            print(f"error: {line}", file=sys.stderr)
        print(f"error: {args.file}: nothing imported", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    models = ", ".join(summary["models"]) or "-"
    print(
        f"imported {summary['answers']} answers about {summary['inputs']} logged inputs "
        f"(models: {models}; {summary['new_versions']} revise an earlier answer)"
    )
    if summary["ignored_columns"]:
        print(f"note: ignored columns: {', '.join(summary['ignored_columns'])}")
    return 0


def _list(args, engine) -> int:
    from tunelab.store.feedback import read_feedback

    rows = read_feedback(engine, model=args.model)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        print("no feedback stored" + (f" for model '{args.model}'" if args.model else ""))
        return 0
    print(f"{'request_id':32}  {'v':>2}  {'model':16}  answer")
    for r in rows:
        answer = "; ".join(
            f"{k}={r[k] if k != 'entities' else json.dumps(r[k])}"
            for k in ("label", "entities", "ideal_answer", "rating")
            if r[k] is not None
        )
        print(f"{r['prediction_id']:32}  {r['version']:>2}  {str(r['model'])[:16]:16}  {answer}")
    return 0


def main(args) -> int:
    from tunelab.store.db import database_url, open_db

    engine = open_db(database_url(args.db))  # StoreError: one line, exit 2
    try:
        return (_import if args.feedback_command == "import" else _list)(args, engine)
    finally:
        engine.dispose()
