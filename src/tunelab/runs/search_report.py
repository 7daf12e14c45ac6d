"""What a hyperparameter search leaves behind: one record per trial, the printed table, and
search.png (the metric per trial with the running best, and each parameter against the
metric). Figures are drawn on a plain matplotlib Figure (Agg), like evaluation/run_report/plots.py.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tunelab.atomic import atomic_write_text
from tunelab.config.legacy import note_upgrade, upgrade_method
from tunelab.evaluation.run_report.plots import save_png

STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running"}


def trial_record(trial) -> dict[str, Any]:
    """An Optuna FrozenTrial as plain JSON; `intermediate` holds the scores reported to
    Optuna (a pruned trial stopped after its last one)."""
    attrs = trial.user_attrs
    steps = attrs.get("eval_steps", {})
    return {
        "trial": trial.number,
        "params": dict(trial.params),
        "value": trial.value,
        "state": STATES.get(trial.state.name, trial.state.name.lower()),
        "seconds": attrs.get("seconds"),
        "output": attrs.get("output"),
        "intermediate": [  # what Optuna holds, by evaluation index, with the optimizer step
            {"evaluation": i, "step": steps.get(str(i)), "value": v}
            for i, v in sorted(trial.intermediate_values.items())
        ],
        **({"error": attrs["error"]} if "error" in attrs else {}),
    }


def format_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def shown_metric(record: dict) -> float | None:
    """The value a trial is shown with: its final value, or a pruned trial's last report."""
    if record["value"] is not None:
        return record["value"]
    if record["intermediate"]:
        return record["intermediate"][-1]["value"]
    return None


def format_search_table(summary: dict) -> str:
    """trial | each parameter | metric | state | seconds; the best trial marked with *."""
    metric = summary["metric"]
    names = list(summary["space"])
    heads = ["trial"] + [n for n in names] + [metric, "state", "seconds"]
    best = (summary.get("best") or {}).get("trial")
    rows = []
    for r in summary.get("trials", []):
        m = shown_metric(r)
        rows.append(
            [f"{r['trial']}{'*' if r['trial'] == best else ''}"]
            + [format_value(r["params"].get(n, "-")) for n in names]
            + ["-" if m is None else f"{m:.4f}", r["state"], f"{r.get('seconds') or 0:.0f}"]
        )
    widths = [
        max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(heads)
    ]
    lines = ["  ".join(h.rjust(w) for h, w in zip(heads, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    done = sum(r["state"] == "complete" for r in summary.get("trials", []))
    pruned = sum(r["state"] == "pruned" for r in summary.get("trials", []))
    failed = sum(r["state"] == "failed" for r in summary.get("trials", []))
    lines.append(
        f"{len(rows)} trials: {done} complete, {pruned} pruned, {failed} failed"
        + (
            f"; best trial {best} ({metric}={summary['best']['value']:.4f}, *)"
            if best is not None
            else ""
        )
    )
    return "\n".join(lines)


def plot_search(summary: dict, path: Path) -> Path:
    """search.png: metric per trial (pruned trials at their last report, grey) with the
    running best of complete trials; below, each parameter against the metric."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    trials = summary["trials"]
    metric, maximize = summary["metric"], summary["direction"] == "maximize"
    names = list(summary["space"])[:6]
    cols = max(1, min(3, len(names)))
    rows = 1 + math.ceil(len(names) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows))
    grid = fig.add_gridspec(rows, cols)
    ax = fig.add_subplot(grid[0, :])
    done = [r for r in trials if r["state"] == "complete" and r["value"] is not None]
    pruned = [r for r in trials if r["state"] == "pruned" and shown_metric(r) is not None]
    ax.scatter([r["trial"] for r in done], [r["value"] for r in done], label="complete", zorder=3)
    if pruned:
        ax.scatter(
            [r["trial"] for r in pruned],
            [shown_metric(r) for r in pruned],
            marker="x",
            color="grey",
            label="pruned (last report)",
            zorder=3,
        )
    if done:
        xs, ys, best = [], [], None
        for r in done:
            if best is None or (r["value"] > best if maximize else r["value"] < best):
                best = r["value"]
            xs.append(r["trial"])
            ys.append(best)
        last = max(r["trial"] for r in trials)
        ax.step(xs + [last], ys + [best], where="post", color="tab:red", label="running best")
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"validation {metric}")
    ax.set_title(f"search: {metric} ({summary['direction']})")
    ax.legend(loc="best", fontsize=8)
    for i, name in enumerate(names):
        pax = fig.add_subplot(grid[1 + i // cols, i % cols])
        spec = summary["space"][name]
        pts = [(r["params"][name], r["value"]) for r in done if name in r["params"]]
        if spec["type"] == "categorical":
            labels = [str(c) for c in spec["choices"]]
            pax.scatter([labels.index(str(x)) for x, _ in pts], [y for _, y in pts])
            pax.set_xticks(range(len(labels)), labels)
        else:
            pax.scatter([x for x, _ in pts], [y for _, y in pts])
            if spec.get("log"):
                pax.set_xscale("log")
        pax.set_xlabel(name)
        pax.set_ylabel(metric)
    fig.tight_layout()
    return save_png(fig, path)


def write_best(summary: dict, study, out: Path, baselines: list) -> None:
    """best_config.yaml: the best complete trial's resolved config, output out/best, the
    user's baselines back, no search section."""
    import optuna
    import yaml

    done = [
        t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE
    ]
    if not done:
        summary["best"] = None
        return
    best = study.best_trial
    run_dir = Path(best.user_attrs["output"])
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    # a trial of a search resumed from an older tunelab: best_config.yaml must load again
    note_upgrade(run_dir / "config.yaml", upgrade_method(resolved))
    resolved["output"] = str(out / "best")
    resolved.setdefault("eval", {})["baselines"] = list(baselines)
    resolved.pop("search", None)
    atomic_write_text(out / "best_config.yaml", yaml.safe_dump(resolved, sort_keys=False))
    summary["best"] = {
        "trial": best.number,
        "value": best.value,
        "params": best.params,
        "output": str(run_dir),
        "config": str(out / "best_config.yaml"),
    }


def progress_line(record: dict, trials: int, summary: dict, metric: str) -> str:
    params = " ".join(
        f"{k.rsplit('.', 1)[-1]}={format_value(v)}" for k, v in record["params"].items()
    )
    state = record["state"]
    if state == "complete":
        result = f"{metric}={record['value']:.4f}"
    elif state == "pruned":
        last = record["intermediate"][-1] if record["intermediate"] else None
        at = f" at evaluation {last['evaluation']} ({metric}={last['value']:.4f})" if last else ""
        result = f"pruned{at}"
    else:
        result = f"{state}: {record.get('error') or ''}".strip()
    best = summary.get("best")
    tail = f"  best: trial {best['trial']} {best['value']:.4f}" if best else ""
    secs = record.get("seconds") or 0
    return f"trial {record['trial'] + 1}/{trials}  {params}  -> {result}  {secs:.0f}s{tail}"
