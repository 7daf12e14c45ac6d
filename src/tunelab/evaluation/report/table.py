"""The terminal table of `tunelab eval`: each model's headline metrics with their intervals,
and each later model's difference from the first with its paired p-value."""

from __future__ import annotations


def _cell(ci: dict | None) -> str:
    if not ci or ci.get("value") is None:
        return "-"
    text = f"{ci['value']:.4f}"
    if ci.get("low") is not None and ci.get("high") is not None:
        text += f" [{ci['low']:.4f}, {ci['high']:.4f}]"
    return text


def _diff_cell(test: dict | None) -> str:
    if not test or test.get("diff") is None:
        return "-"
    text = f"{test['diff']:+.4f}"
    if test.get("p_value") is not None:
        text += f" p={test['p_value']:.3f}"
    return text


def format_report_table(report: dict) -> str:
    """The terminal table: per metric, each model's value with its interval, and each later
    model's difference from the first with the paired p-value."""
    models = report["models"]
    level = int(round(report["settings"]["level"] * 100))
    header = ["metric"] + [f"{m['name']} ({level}% CI)" for m in models]
    header += [f"{c['name']} - {c['baseline']}" for c in report["comparison"]]
    body = []
    for metric in report["headline"]:
        row = [metric] + [_cell(m["ci"].get(metric)) for m in models]
        row += [_diff_cell(c["tests"].get(metric)) for c in report["comparison"]]
        body.append(row)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    head = f"{report['data']}: {report['rows']} rows, {report['task']}"
    for c in report["comparison"]:
        mc = c["tests"].get("mcnemar")
        if mc:
            lines.append(
                f"McNemar {c['name']} vs {c['baseline']}: {c['baseline']} only right on "
                f"{mc['a_only']} rows, {c['name']} only on {mc['b_only']}, p={mc['p_value']:.3f}"
            )
    gaps = (report.get("slices") or {}).get("gaps") or {}
    for name, per in gaps.items():
        metric = next((k for k in report["headline"] if k in per), None)
        if metric:
            g = per[metric]
            lines.append(
                f"slices by {report['slices']['column']}, {name}: {metric} gap {g['gap']:.4f} "
                f"(best {g['best_slice']} {g['best']:.4f}, worst {g['worst_slice']} {g['worst']:.4f})"
            )
    return head + "\n" + "\n".join(lines)
