"""report.html of `tunelab eval`: one self-contained page (CSS inline, figures as base64 PNGs).

Sections, in order: header (models, data, rows), headline metrics with intervals and the
paired tests against the first model, the task's analysis (classification: confusion
matrices, per-class table, reliability diagram and ECE, confident mistakes; NER: per entity
type; generation: rows_generate's section), slices by the group column with the best-worst
gap, and the training diagnosis of every model that is a run. This module builds the context
(formatted numbers, strings, figure URIs); templates/eval_report.html.j2 lays it out and
escapes every string that comes from a file, a model or the user.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tunelab.evaluation.diagnosis.plot import plot_diagnosis
from tunelab.evaluation.report.calibration import plot_reliability
from tunelab.evaluation.report.generation import generation_context
from tunelab.evaluation.report.jsonable import jsonable
from tunelab.evaluation.report.rows import RowOutputs
from tunelab.evaluation.run_report.plots import plot_confusion_matrix
from tunelab.metrics.classification import primary_metric_mode
from tunelab.tasks import get_task
from tunelab.templates import num, png_uri, render, signed

ALPHA = 0.05  # p below this: the difference is marked significant
NO_DIRECTION = {"gen_tokens_mean", "tokens", "n"}  # metrics where neither way is better


def _ci(c: dict | None) -> dict | None:
    """A value with its interval, formatted: {value, low, high} (low/high None without one)."""
    if not c or c.get("value") is None:
        return None
    bounded = c.get("low") is not None and c.get("high") is not None
    return {
        "value": num(c["value"]),
        "low": num(c["low"]) if bounded else None,
        "high": num(c["high"]) if bounded else None,
    }


def _diff(t: dict | None, metric: str) -> dict | None:
    """Difference cell (with interval) and p cell; significant ones bold, green when the
    compared model is better on this metric (lower loss, higher accuracy), red when worse."""
    if not t or t.get("diff") is None:
        return None
    p = t.get("p_value")
    sig = p is not None and p < ALPHA
    worse = t["diff"] < 0 if primary_metric_mode(metric) == "max" else t["diff"] > 0
    if metric in NO_DIRECTION:  # longer is neither better nor worse: no colour
        cls = "bold" if sig else ""
    else:
        cls = " ".join(c for c, on in (("neg", worse), ("sig", sig)) if on)
    bounded = t.get("low") is not None
    return {
        "cls": cls,
        "value": signed(t["diff"]),
        "low": signed(t["low"]) if bounded else None,
        "high": signed(t["high"]) if bounded else None,
        "p": num(p, 3),
    }


def _header(report: dict) -> list[tuple[str, str]]:
    s = report["settings"]
    items = [("data", str(report["data"])), ("rows", num(report["rows"]))]
    items.append(("task", str(report["task"])))
    for m in report["models"]:
        where = m["spec"] + (f"  (run {m['run']})" if m.get("run") else "")
        items.append((f"model: {m['name']}", where))
    ci = f"{int(s['level'] * 100)}% percentile bootstrap, {s['bootstrap']} resamples, seed {s['seed']}"
    items.append(("intervals", ci if s["bootstrap"] else "none (--bootstrap 0)"))
    return items


def _headline(report: dict) -> dict:
    models, comps = report["models"], report["comparison"]
    rows = [
        {
            "metric": metric,
            "cis": [_ci(m["ci"].get(metric)) for m in models],
            "diffs": [_diff(c["tests"].get(metric), metric) for c in comps],
        }
        for metric in report["headline"]
    ]
    mcnemar = [
        {
            "name": c["name"],
            "baseline": c["baseline"],
            "a_only": mc["a_only"],
            "b_only": mc["b_only"],
            "p": num(mc["p_value"], 4),
        }
        for c in comps
        if (mc := c["tests"].get("mcnemar"))
    ]
    comparisons = [(c["name"], c["baseline"]) for c in comps]
    return {"comparisons": comparisons, "rows": rows, "mcnemar": mcnemar, "alpha": ALPHA}


def _prf(c: dict) -> list[str]:
    return [num(c.get(k)) for k in ("precision", "recall", "f1")]


def _classification(report: dict, tmp: Path) -> dict:
    models = report["models"]
    d0 = models[0]["details"]
    names = d0["labels"]
    figures = []
    for i, m in enumerate(models):
        cm = m["details"].get("confusion_matrix")
        if cm:
            png = plot_confusion_matrix(cm, names, tmp / f"cm{i}.png", title=m["name"])
            figures.append({"name": m["name"], "uri": png_uri(png)})
    per_class = [
        {
            "name": name,
            "support": num(d0["per_class"][name]["support"]),
            "cells": [x for m in models for x in _prf(m["details"]["per_class"][name])],
        }
        for name in names
    ]
    curves = [(m["name"], m["details"]["calibration"]) for m in models]
    calibration = None
    if any(c["n"] for _, c in curves):
        calibration = {
            "uri": png_uri(plot_reliability(curves, tmp / "reliability.png")),
            "rows": [(n, num(c["ece"]), num(c["mce"])) for n, c in curves],
        }
    mistakes = [
        {"name": m["name"], "rows": [_mistake(r) for r in m["details"]["mistakes"]]}
        for m in models
        if m["details"].get("mistakes") is not None
    ]
    return {
        "figures": figures,
        "per_class": per_class,
        "calibration": calibration,
        "mistakes": mistakes,
    }


def _mistake(r: dict) -> dict:
    return {
        "row": r["row"],
        "text": str(r["text"]),
        "label": str(r["label"]),
        "predicted": str(r["predicted"]),
        "confidence": num(r["confidence"]),
    }


def _ner(report: dict) -> dict:
    models = report["models"]
    types = sorted(set().union(*(m["details"]["per_type"] for m in models)))
    rows = []
    for t in types:
        support = next(
            (
                m["details"]["per_type"][t]["support"]
                for m in models
                if t in m["details"]["per_type"]
            ),
            0,
        )
        cells = [x for m in models for x in _prf(m["details"]["per_type"].get(t, {}))]
        rows.append({"name": t, "support": num(support), "cells": cells})
    return {"rows": rows}


def _slices(report: dict) -> dict | None:
    sl = report.get("slices")
    if not sl:
        return None
    metrics = [k for k in report["headline"]][:3]
    models = report["models"]
    rows = []
    for s in sl["slices"]:
        cells = []
        for m in models:
            gaps = sl["gaps"].get(m["name"], {})
            for k in metrics:
                g = gaps.get(k) or {}
                cls = (
                    "best"
                    if g.get("best_slice") == s["value"]
                    else "worst"
                    if g.get("worst_slice") == s["value"]
                    else ""
                )
                cells.append({"cls": cls, "ci": _ci(s["models"][m["name"]].get(k))})
        rows.append({"value": s["value"], "n": num(s["n"]), "small": s["small"], "cells": cells})
    gaps = [
        num((sl["gaps"].get(m["name"], {}).get(k) or {}).get("gap"))
        for m in models
        for k in metrics
    ]
    return {
        "column": sl["column"],
        "metrics": metrics,
        "rows": rows,
        "gaps": gaps,
        "min_rows": sl["min_rows"],
        "large": sl["gap_over"] == "large",
    }


def _diagnosis(report: dict, tmp: Path) -> list[dict]:
    runs = []
    for i, (name, d) in enumerate((report.get("diagnosis") or {}).items()):
        records = d.get("records") or []
        uri = png_uri(plot_diagnosis(records, d, tmp / f"diag{i}.png")) if records else None
        findings = [{**f, "step": num(f.get("step"))} for f in d.get("findings", [])]
        runs.append({"name": name, "run": d["run"], "uri": uri, "findings": findings})
    return runs


def render_eval_html(report: dict, outputs: list[RowOutputs]) -> str:
    """The whole page for a report dict (as evaluate_report builds it) and its outputs."""
    data = jsonable(report)  # numbers as plain floats, no numpy arrays
    for src, d in zip(report.get("diagnosis", {}).values(), data.get("diagnosis", {}).values()):
        d["records"] = src.get("records") or []
    task = get_task(data["task"])
    # the template's sections: per-class figures (one label per input), per-entity tables
    # (labels per word), generated samples (text outputs)
    sections: dict = {"per_class": None, "per_entity": None, "generation": None}
    with tempfile.TemporaryDirectory(prefix="tunelab-eval-") as tmp:
        if task.head_kind == "sequence":
            sections["per_class"] = _classification(data, Path(tmp))
        elif task.head_kind == "token":
            sections["per_entity"] = _ner(data)
        elif task.generates:
            sections["generation"] = generation_context(outputs)
        diagnosis = _diagnosis(data, Path(tmp))
    names = [m["name"] for m in data["models"]]
    return render(
        "eval_report.html.j2",
        title="Evaluation: " + ", ".join(names),
        models=names,
        header=_header(data),
        headline=_headline(data),
        slices=_slices(data),
        diagnosis=diagnosis,
        **sections,
    )
