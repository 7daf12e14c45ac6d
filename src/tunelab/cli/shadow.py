"""`tunelab shadow NAME`: how the shadow model (`tunelab serve ... --shadow challenger@NAME`)
compares with the served one on the live inputs both answered (monitor/shadow.py)."""

from __future__ import annotations

import argparse
import json
import sys

EXAMPLES = """examples:
  tunelab serve champion@sst2 --shadow challenger@sst2     # the challenger answers unseen
  tunelab shadow sst2                                      # agreement, estimated difference
  tunelab shadow sst2 --since 2026-12-01 --json
  tunelab shadow sst2 --db postgresql://user:pw@db/tunelab

Per pair of versions (served, shadow) that answered: agreement with its 95% interval and
the labels that flipped; for classifiers, each model's label-free accuracy estimate and the
estimated difference (shadow - served) with its 95% interval, and, on inputs with feedback,
the real accuracies, their paired interval and McNemar's p. Exit codes: 0 reported, 2 bad
input (no shadow rows for NAME, a database that cannot be opened). Docs: docs/serving.md#shadow-mode."""


def add_parser(sub) -> None:
    s = sub.add_parser(
        "shadow",
        help="compare a shadow model with the served one on live traffic",
        description="Agreement and estimated difference of a --shadow model (docs/serving.md).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("name", metavar="NAME", help="the served model name the shadow ran beside")
    s.add_argument(
        "--db",
        metavar="URL",
        help="the prediction log's database (default: $TUNELAB_DB, else sqlite:///tunelab.db)",
    )
    s.add_argument("--since", metavar="TIME", help="only inputs from TIME (ISO or epoch s)")
    s.add_argument("--until", metavar="TIME", help="only inputs before TIME (ISO or epoch s)")
    s.add_argument("--json", action="store_true", help="print the comparison as JSON")


def _pct(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def _signed(v) -> str:
    return "-" if v is None else f"{v:+.3f}"


def _print(out: dict) -> None:
    from datetime import datetime

    for g in out["groups"]:
        who = g["reference"] or g["path"]
        version = f" version {g['registry_version']}" if g["registry_version"] else ""
        span = " .. ".join(
            datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M") for t in (g["first"], g["last"])
        )
        print(f"shadow of {out['model']}: {who}{version} ({g['path']})")
        print(f"  beside {g['served_path']} (version {g['served_version']}), {span}")
        print(f"  inputs              {g['n']} ({g['n_errors']} shadow errors)")
        for err in g["errors"]:
            print(f"    error: {err}")
        if g["agreement"] is not None:
            disagree = g["n_answered"] - round(g["agreement"] * g["n_answered"])
            print(
                f"  agreement           {_pct(g['agreement'])}  [{_pct(g['agreement_low'])}, "
                f"{_pct(g['agreement_high'])}]  ({disagree} inputs answered otherwise)"
            )
        est = g["estimate"]
        if est is not None:
            a, b = est["served"], est["shadow"]
            print(
                f"  estimated accuracy  served {_pct(a['accuracy'])} [{_pct(a['accuracy_low'])}, "
                f"{_pct(a['accuracy_high'])}], shadow {_pct(b['accuracy'])} "
                f"[{_pct(b['accuracy_low'])}, {_pct(b['accuracy_high'])}]  (no labels)"
            )
            print(
                f"  estimated diff      shadow - served {_signed(est['diff'])}  "
                f"[{_signed(est['low'])}, {_signed(est['high'])}]"
            )
        fb = g["feedback"]
        if fb is not None:
            print(
                f"  with feedback       {fb['n']} inputs: served {_pct(fb['served_accuracy'])}, "
                f"shadow {_pct(fb['shadow_accuracy'])}, diff {_signed(fb['diff'])} "
                f"[{_signed(fb['low'])}, {_signed(fb['high'])}], McNemar p "
                f"{fb['mcnemar']['p_value']:.3g}"
            )
        if g["flips"]:
            print("  answered otherwise  served -> shadow")
            for f in g["flips"][:10]:
                print(f"    {f['served']} -> {f['shadow']}: {f['n']}")
        lat = g["latency_ms"]
        if lat["served"] is not None and lat["shadow"] is not None:
            print(f"  median latency ms   served {lat['served']:.1f}, shadow {lat['shadow']:.1f}")
    for note in out["notes"]:
        print(f"note: {note}")


def main(args) -> int:
    from tunelab.cli.monitor import parse_time
    from tunelab.monitor.shadow import report
    from tunelab.store.db import database_url, open_db

    since, until = parse_time(args.since, "--since"), parse_time(args.until, "--until")
    engine = open_db(database_url(args.db))  # StoreError: one line, exit 2
    try:
        out = report(engine, args.name, since, until)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    else:
        _print(out)
    sys.stdout.flush()
    return 0
