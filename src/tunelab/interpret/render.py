"""HTML pages of attributions: tokens highlighted red (raise the explained score) or blue
(lower it), shade scaled per row by the largest |value|, the value in each token's hover
title. Self-contained (inline CSS, no scripts, no network).

This module turns an explain() or global_importance() report into the context of
templates/explain.html.j2 and global.html.j2: token texts, colours and formatted values. The
templates escape every text.
"""

from __future__ import annotations

from tunelab.interpret.attributions import METHOD_NAMES
from tunelab.tasks import get_task
from tunelab.templates import render


def color(v: float, scale: float) -> str:
    """Red for positive, blue for negative; alpha up to 0.8 at |v| = scale."""
    a = 0.0 if scale <= 0 else min(abs(v) / scale, 1.0) * 0.8
    rgb = "220,38,38" if v >= 0 else "37,99,235"
    return f"rgba({rgb},{a:.3f})"


def token_cells(tokens: list[dict], values: list[float] | None = None) -> list[dict]:
    """One highlighted run of tokens (no values: plain): per token its text, whether a space
    goes before it (a real space lets long prompts wrap between words), whether it is a
    special token, its background and its hover title."""
    vals = values or [0.0] * len(tokens)
    scale = max((abs(v) for v, t in zip(vals, tokens) if not t["special"]), default=0.0)
    return [
        {
            "text": t["text"],
            "space": bool(t["space"]) and i > 0,
            "special": bool(t["special"]),
            "bg": color(v, scale) if values else None,
            "title": f"{t['text']}: {v:+.4f}",
        }
        for i, (t, v) in enumerate(zip(tokens, vals))
    ]


def _prediction(p: dict) -> dict | None:
    if "label" in p:
        return {"label": p["label"], "p": f"{p['score']:.3f}"}
    if "entities" in p:
        return {"entities": [f"{x['text']} [{x['type']}]" for x in p["entities"]]}
    return None


def _heatmap(tokens: list[dict], per: dict, span_tokens: list[str]) -> dict:
    """Prompt tokens (rows) x generated tokens (columns); each column scaled on its own."""
    m = per["matrix"]  # (G, P)
    scales = [max((abs(x) for x in col), default=0.0) for col in m]
    rows = [
        {
            "label": t["text"],
            "cells": [
                {
                    "bg": color(m[g][j], scales[g]),
                    "title": f"{t['text']} -> {span_tokens[g]}: {m[g][j]:+.4f}",
                }
                for g in range(len(m))
            ],
        }
        for j, t in enumerate(tokens)
        if not t["special"]
    ]
    return {"method": METHOD_NAMES[per["method"]], "columns": span_tokens, "rows": rows}


def _unit(u: dict, tokens: list[dict]) -> dict:
    ig = None
    if "ig" in u["attributions"]:
        ig = (
            f"IG: sum {sum(u['attributions']['ig']):+.4f}; score {u['score']:.4f} - baseline "
            f"{u['baseline_score']:.4f} = {u['score'] - u['baseline_score']:+.4f} (convergence "
            f"delta {u.get('convergence_delta', 0):+.2e})"
        )
    return {
        "name": u["name"],
        "span": u.get("span"),
        "rows": [
            {"method": METHOD_NAMES[m], "tokens": token_cells(tokens, vals)}
            for m, vals in u["attributions"].items()
        ],
        "ig": ig,
        "warning": u.get("warning"),
        "heatmap": _heatmap(tokens, u["per_token"], u["span_tokens"]) if "per_token" in u else None,
    }


def _column(block: dict, title: str) -> dict:
    return {
        "title": title,
        "model": block["model"],
        "prediction": _prediction(block["prediction"]),
        "own_generation": block.get("own_generation"),
        "units": [_unit(u, block["tokens"]) for u in block["units"]],
        "plain": token_cells(block["tokens"]),
    }


def render_report(report: dict) -> str:
    """The explain.html page of an explain() report."""
    s = report["settings"]
    texts = []
    for t in report["texts"]:
        cols = [_column(t, "model")]
        if "compare" in t:
            cols.append(_column(t["compare"], "compared with"))
        links = list((t.get("attention") or {}).values())
        texts.append({"text": t["text"], "pair": t.get("pair"), "columns": cols, "links": links})
    return render(
        "explain.html.j2",
        title="tunelab explain",
        model=report["model"],
        task=report["task"],
        methods=", ".join(METHOD_NAMES[m] for m in report["methods"]),
        score="span log-likelihood"
        if get_task(report["task"]).head_kind == "causal"
        else s["score"],
        baseline_token=s["baseline_token"],
        ig_steps=s["ig_steps"],
        texts=texts,
    )


def render_global(report: dict) -> str:
    """global.html: per class, bars of the words that most push toward it."""
    classes = []
    for cls, words in report["classes"].items():
        scale = max((abs(w["mean"]) for w in words), default=0.0) or 1.0
        bars = [
            {
                "word": w["word"],
                "width": f"{max(2, 260 * abs(w['mean']) / scale):.0f}",
                "bg": color(w["mean"], scale),
                "title": f"mean {w['mean']:+.4f}",
                "mean": f"{w['mean']:+.3f}",
                "seen": f"{w['pushes']}/{w['count']}",
            }
            for w in words
        ]
        classes.append({"name": cls, "words": bars})
    return render(
        "global.html.j2",
        title="tunelab explain --global",
        model=report["model"],
        rows=report["rows"],
        data=report["data"],
        method=METHOD_NAMES[report["method"]],
        min_count=report["min_count"],
        classes=classes,
    )
