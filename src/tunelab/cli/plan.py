"""`tunelab plan CONFIG [key=value ...]`: memory and time of a run before any weights load."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

EXAMPLES = """examples:
  tunelab plan examples/sst2.yaml
  tunelab plan examples/sst2.yaml method.name=full train.batch_size=64
  tunelab plan examples/chat_sft.yaml --device cuda:80GB      # a machine you do not have
  tunelab plan examples/sst2.yaml --measure                   # + 3 real steps: estimate vs measured
  tunelab plan examples/sst2.yaml --json

The estimate reads config.json (no weights) and the training data's real token lengths.
docs/planning.md says how each figure is computed and how far off it was measured to be."""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "plan",
        help="estimate a run's peak memory and time (before any weights load)",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="run config (YAML)")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    p.add_argument(
        "--device",
        help="plan for this device: cuda:80GB, cuda:24GB, cpu:16GB (default: the one detected)",
    )
    p.add_argument(
        "--measure", action="store_true", help="run 3 real steps; print measured beside estimated"
    )
    p.add_argument("--json", action="store_true", help="print the plan as JSON")


def main(args) -> int:
    from tunelab.config import load_config
    from tunelab.runs.plan import make_plan

    cfg = load_config(args.config, args.overrides)
    # --json: stdout is the JSON alone; the defaults chosen on the way go to stderr
    quiet = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    with quiet:
        plan, ctx = make_plan(cfg, args.device)
        if args.measure:
            from tunelab.runs.plan_measure import measure

            plan["measured"] = measure(ctx, plan)
    print(json.dumps(plan, indent=2) if args.json else format_plan(plan))
    return 0


def format_plan(plan: dict) -> str:
    e, d, data = plan["estimate"], plan["device"], plan["data"]
    m = plan.get("measured")
    lines = [
        f"{plan['model']} ({plan['model_type']}) / {e['method']} / {plan['task']} on "
        f"{d['kind']} {d['memory_mib'] / 1024:.1f} GiB ({d['name']})",
        f"data: {data['rows']} rows, tokens p50 {data['length_p50']} p95 {data['length_p95']} "
        f"max {data['length_max']}; max_length {data['max_length']}; batch {e['batch_size']} x "
        f"accum {e['grad_accum']}, {e['precision']}"
        + (", gradient checkpointing" if e["checkpointing"] else ""),
        f"trains {e['trainable_params']:,} of {e['total_params']:,} parameters",
        "",
        f"{'memory (MiB)':24s} {'estimate':>10s}" + (f" {'measured':>10s}" if m else ""),
    ]
    for key in ("weights", "gradients", "optimizer", "activations", "logits", "runtime"):
        lines.append(f"  {key:22s} {e[key + '_mib']:10,.1f}")
    lines.append(
        f"  {'peak':22s} {e['peak_mib']:10,.1f}" + (f" {m['peak_mib']:10,.1f}" if m else "")
    )
    lines.append(f"{'step (s)':24s} {e['step_s']:10.3f}" + (f" {m['step_s']:10.3f}" if m else ""))
    lines.append(f"{'epoch':24s} {_duration(e['epoch_s']):>10s}  ({e['steps_per_epoch']} steps)")
    if "run_s" in e:
        lines.append(f"{'run':24s} {_duration(e['run_s']):>10s}")
    if m:
        lines.append(f"\nestimate error: peak {m['peak_error']:+.0%}, step {m['step_error']:+.0%}")
    lines.append(
        f"\n{'fits' if plan['fits'] else 'DOES NOT FIT'}: peak {e['peak_mib']:,.0f} of "
        f"{d['memory_mib']:,.0f} MiB"
    )
    for r in plan["recommendations"]:
        lines.append(
            f"  try {r['change']:42s} peak {r['peak_mib']:9,.0f} MiB  epoch "
            f"{_duration(r['epoch_s']):>8s}{'' if r['fits'] else '  (still too big)'}  ({r['why']})"
        )
    return "\n".join(lines)


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.1f}s"
    if s < 7200:
        return f"{s / 60:.1f}min"
    return f"{s / 3600:.1f}h"
