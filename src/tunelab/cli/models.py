"""`tunelab models [--task T] [--fits] [--path P] [--json]`: the catalogue, ranked."""

from __future__ import annotations

import json


def main(args) -> int:
    from tunelab.models.hub_catalog import catalogue
    from tunelab.models.planner.device import parse_device

    memory = parse_device(None).memory_mib
    rows = catalogue(args.task, tuple(args.path or ()), memory)
    if args.fits:
        rows = [r for r in rows if r["loadable"] and r["fits_memory"] is not False]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"{'name':38s} {'family':15s} {'params':>8s} {'context':>8s} {'license':11s} source    here"
    )
    for r in rows:
        params = f"{r['params'] / 1e6:.1f}M" if r["params"] else "-"
        here = "yes" if r["loadable"] else "no"
        if r["fits_memory"] is False:
            here += " (too big to train here)"
        print(
            f"{r['name']:38s} {r['family']:15s} {params:>8s} {str(r['context'] or '-'):>8s} "
            f"{r['license'] or '-':11s} {r['source']:9s} {here}"
        )
    print(
        f"\nranked for {args.task or 'any task'} and {memory / 1024:.0f} GiB here; "
        "`tunelab plan CONFIG` estimates a run exactly"
    )
    return 0
