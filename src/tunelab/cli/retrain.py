"""`tunelab retrain NAME`: fine-tune the champion on feedback-labelled logged inputs (with
replay of its training data), compare, and promote only through the gate (runs/retrain.py).
Exit codes: 0 promoted, 4 not promoted (the gate refused, or nothing to do), 2 bad input."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

EXAMPLES = """examples:
  tunelab retrain sst2                               # feedback since the start, defaults
  tunelab retrain sst2 --since 2026-12-01 --config retrain.yaml --json
  tunelab retrain sst2 --force                       # promote even if the gate refuses

retrain.yaml: run-config overrides for the challenger, plus a retrain: section
  train: {epochs: 2, lr: 2.0e-5}
  retrain: {heldout: 0.3, replay_ratio: 0.3, margin: 0.02, golden: [golden.jsonl]}
The gate: better on the held-out new data (the paired-bootstrap interval of challenger -
champion above 0) and not worse than `margin` on the champion's test set and golden sets.
A killed retrain continues when run again. Exit codes: 0 promoted, 4 not promoted
(refused or nothing to do), 2 bad input. Docs: docs/retrain.md."""

EXIT = {"promoted": 0, "refused": 4, "nothing_to_do": 4}


def add_parser(sub) -> None:
    r = sub.add_parser(
        "retrain",
        help="retrain the champion on feedback, gate it, promote it",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("name", metavar="NAME", help="the registered model (its champion retrains)")
    r.add_argument(
        "--db", metavar="URL", help="the database (default: $TUNELAB_DB, else sqlite:///tunelab.db)"
    )
    r.add_argument("--since", metavar="T", help="logged inputs from T on (ISO time or epoch)")
    r.add_argument("--until", metavar="T", help="logged inputs before T")
    r.add_argument("--config", metavar="FILE", help="overrides + a retrain: section (YAML)")
    r.add_argument("--logged-name", help="the name the server logs under (default: NAME)")
    r.add_argument("--work", default="retrains", help="where retrains keep their work (retrains/)")
    r.add_argument("--force", action="store_true", help="promote even when the gate refuses")
    r.add_argument("--json", action="store_true", help="print the report as JSON")


def main(args) -> int:
    from tunelab.cli.monitor import parse_time
    from tunelab.runs.retrain import markdown, retrain

    # with --json, stdout is the report alone: progress (prepare, training) goes to stderr
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        report = retrain(
            args.name,
            db=args.db,
            since=parse_time(args.since, "--since"),
            until=parse_time(args.until, "--until"),
            config=args.config,
            logged_name=args.logged_name,
            work_root=args.work,
            force=args.force,
        )
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    elif "evals" in report:
        print(markdown(report))
        print(f"report: {report['work']}/retrain.md")
    else:
        print(f"retrain {args.name}: {report['decision']}: " + "; ".join(report["reasons"]))
    if report["decision"] != "promoted":
        print(f"retrain {args.name}: not promoted; the champion stays", file=sys.stderr)
    return EXIT[report["decision"]]
