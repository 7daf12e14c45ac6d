"""The planner's error: `tunelab plan --measure` on packaged models and tiny configs across
methods, batch sizes and lengths; estimated vs measured peak memory and step time.

    .venv/bin/python bench/plan.py [--quick]      # writes bench/results/plan-<date>.json

Each case runs in a fresh process (the CPU peak is an RSS high-water mark).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = [  # config, overrides
    ("examples/sst2.yaml", ["method.name=lora", "train.batch_size=16"]),
    ("examples/sst2.yaml", ["method.name=lora", "train.batch_size=32"]),
    ("examples/sst2.yaml", ["method.name=full", "train.batch_size=16"]),
    ("examples/sst2.yaml", ["method.name=full", "train.batch_size=32"]),
    ("examples/sst2.yaml", ["method.name=freeze", "train.batch_size=32"]),
    ("examples/sst2.yaml", ["method.name=adapter", "train.batch_size=32"]),
    ("examples/sst2.yaml", ["method.name=lora", "train.batch_size=32", "data.max_length=24"]),
    ("examples/sst2.yaml", ["method.name=ia3", "train.batch_size=32"]),
    ("examples/chat_sft.yaml", ["method.name=lora", "train.batch_size=1", "data.max_length=256"]),
    ("examples/chat_sft.yaml", ["method.name=lora", "train.batch_size=2", "data.max_length=256"]),
    ("examples/chat_sft.yaml", ["method.name=full", "train.batch_size=1", "data.max_length=128"]),
    (
        "examples/chat_sft.yaml",
        ["method.name=prompt", "train.batch_size=1", "data.max_length=256", "data.packing=false"],
    ),
]


def run(config: str, overrides: list[str]) -> dict:
    cmd = [sys.executable, "-m", "tunelab.cli", "plan", config, *overrides, "--measure", "--json"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        return {"config": config, "overrides": overrides, "error": proc.stderr.strip()[-300:]}
    plan = json.loads(proc.stdout[proc.stdout.index("{") :])
    e, m = plan["estimate"], plan["measured"]
    return {
        "config": config,
        "overrides": overrides,
        "est_peak_mib": round(e["peak_mib"], 1),
        "measured_peak_mib": m["peak_mib"],
        "peak_error": m["peak_error"],
        "est_step_s": e["step_s"],
        "measured_step_s": m["step_s"],
        "step_error": m["step_error"],
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="the first 3 cases only")
    args = p.parse_args()
    rows = [run(c, o) for c, o in (CASES[:3] if args.quick else CASES)]
    ok = [r for r in rows if "error" not in r]
    errs = [abs(r["peak_error"]) for r in ok]
    summary = {
        "machine": f"{platform.machine()} {platform.processor()}, {__import__('os').cpu_count()} cores",
        "date": datetime.date.today().isoformat(),
        "median_abs_peak_error": statistics.median(errs) if errs else None,
        "worst_abs_peak_error": max(errs) if errs else None,
        "rows": rows,
    }
    out = ROOT / "bench" / "results" / f"plan-{summary['date']}.json"
    out.write_text(json.dumps(summary, indent=2))
    for r in rows:
        print(json.dumps(r))
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}))


if __name__ == "__main__":
    main()
