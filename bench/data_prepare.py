"""Benchmark: the full `tunelab data prepare` (clean + exact and near dedup + PII + split) on
~80k real rows: SST-2 train (67,349) + AG News train (5,000) and test (7,600).

Reports rows/s (the whole stage, reading and the report included, and per step) and peak RSS,
and with --dedup-compare also runs bench/dedup_compare.py: tunelab's near-duplicate step
against a plain `datasketch` MinHash + MinHashLSH loop as a user would write it.
Results are appended to bench/results/data_prepare.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "datasets"
RESULT = REPO / "bench" / "results" / "data_prepare.md"
EXAMPLE = """example:
  .venv/bin/python bench/data_prepare.py                    # ~80k rows, appends to bench/results/data_prepare.md
  .venv/bin/python bench/data_prepare.py --rows 20000 --no-save
  .venv/bin/python bench/data_prepare.py --dedup-compare    # also tunelab vs datasketch near-dedup
"""


def write_input(folder: Path, rows: int | None) -> Path:
    """One JSONL with `text` and `label` from SST-2 and AG News (labels kept as their names)."""
    out = folder / "input.jsonl"
    n = 0
    with out.open("w", encoding="utf-8") as f:
        for path, field in (
            (DATA / "sst2" / "train.jsonl", "sentence"),
            (DATA / "ag_news" / "train.jsonl", "text"),
            (DATA / "ag_news" / "test.jsonl", "text"),
        ):
            for line in path.open(encoding="utf-8"):
                r = json.loads(line)
                f.write(json.dumps({"text": r[field], "label": r["label_text"]}) + "\n")
                n += 1
                if rows and n >= rows:
                    return out
    return out


def run(rows: int | None) -> dict:
    from tunelab.config.load import validate_config
    from tunelab.data.prepare import prepare

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = write_input(tmp, rows)
        cfg = validate_config(
            {
                "model": "all-minilm-l6-v2",
                "data": {
                    "train": str(path),
                    "text": "text",
                    "label": "label",
                    "prepare": {
                        "clean": {"enabled": True},
                        "dedup": {"exact": True, "near": True, "threshold": 0.8},
                        "pii": {"action": "replace"},
                        "split": {"ratios": {"train": 0.8, "validation": 0.1, "test": 0.1}},
                    },
                },
                "output": str(tmp / "run"),
            }
        )
        t0 = time.perf_counter()
        result = prepare(cfg.data, cfg.output, force=True)
        seconds = time.perf_counter() - t0
    report = result.report["prepare"]
    return {
        "rows": report["rows_in"],
        "rows_out": report["rows_out"],
        "seconds": round(seconds, 2),
        "rows_per_s": round(report["rows_in"] / seconds, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "steps": [
            {k: s[k] for k in ("step", "rows_in", "rows_out", "seconds")} for s in report["steps"]
        ],
    }


def table(res: dict) -> str:
    lines = [
        f"Whole stage: {res['rows']:,} rows in {res['seconds']} s = **{res['rows_per_s']:,.0f} rows/s** "
        f"(goal >= 5,000), peak RSS {res['peak_rss_mib']:,.0f} MiB, {res['rows_out']:,} rows out.",
        "",
        "| step | rows in | rows out | seconds | rows/s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for s in res["steps"]:
        rate = f"{s['rows_in'] / s['seconds']:,.0f}" if s["seconds"] > 0 else "-"
        lines.append(
            f"| {s['step']} | {s['rows_in']:,} | {s['rows_out']:,} | {s['seconds']:.2f} | {rate} |"
        )
    lines.append("")
    lines.append(
        "(the rest of the wall time is the report: inspect of the cleaned train split, plots, HTML)"
    )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, help="use only the first N rows (default: all ~80k)")
    ap.add_argument(
        "--dedup-compare",
        action="store_true",
        help="also run bench/dedup_compare.py on the same rows",
    )
    ap.add_argument(
        "--no-save", action="store_true", help="print only; write nothing to bench/results"
    )
    args = ap.parse_args()
    sys.path.insert(0, str(REPO / "bench"))
    from dedup_compare import machine, versions

    res = run(args.rows)
    text = table(res)
    print(text)
    if not args.no_save:
        RESULT.parent.mkdir(parents=True, exist_ok=True)
        head = f"\n## {dt.datetime.now():%Y-%m-%dT%H:%M} · {machine()}\n\n{versions()}\n\n"
        with RESULT.open("a", encoding="utf-8") as f:
            f.write(head + text + "\n\nCommand: `python bench/data_prepare.py`\n")
    if args.dedup_compare:
        cmd = [sys.executable, str(REPO / "bench" / "dedup_compare.py")]
        if args.rows:
            cmd += ["--rows", str(args.rows)]
        if args.no_save:
            cmd.append("--no-save")
        return subprocess.call(cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
