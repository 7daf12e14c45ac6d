"""report.html of `tunelab eval`: one self-contained page (CSS inline, figures as base64 PNGs).

Sections, in order: header (models, data, rows), headline metrics with intervals and the
paired tests against the first model, the task's analysis (classification: confusion
matrices, per-class table, reliability diagram and ECE, confident mistakes; NER: per entity
type; generation: rows_generate's section), slices by the group column with the best-worst
gap, and the training diagnosis of every model that is a run. Every string that comes from a
file, a model or the user is escaped.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from tunelab.evaluation.report.rows import RowOutputs
from tunelab.evaluation.run_report.page import _CSS, _esc, _kv_table, _png_uri

ALPHA = 0.05  # p below this: the difference is marked significant
NO_DIRECTION = {"gen_tokens_mean", "tokens", "n"}  # metrics where neither way is better
_EXTRA_CSS = """
.sig{font-weight:600;color:#1a7f37}.neg.sig{color:#b42318}.ci{color:#777;font-size:.9em}
.best{background:#e6f4ea}.worst{background:#fdecea}.small td{color:#999}
.grid{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
.grid figure{margin:0;max-width:420px}.grid figcaption{text-align:center;color:#555}
.wrap{overflow-x:auto}td{white-space:nowrap}th.l{text-align:left}
td.text{text-align:left;max-width:34em;white-space:normal}th.grp{text-align:center;border-left:2px solid #ddd}
.warning{color:#b42318;font-weight:600}.info{color:#555}.bold{font-weight:600}
.diag td,.diag th{text-align:left}
th{white-space:nowrap}.kv td{text-align:left}.two .ci{display:block}
"""


def _num(v: Any, digits: int = 4) -> str:
    if v is None:
        return "—"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return f"{v:.{digits}f}"


def _ci(c: dict | None) -> str:
    if not c or c.get("value") is None:
        return "—"
    text = _num(c["value"])
    if c.get("low") is not None and c.get("high") is not None:
        text += f" <span class=ci>[{_num(c['low'])}, {_num(c['high'])}]</span>"
    return text


def _diff(t: dict | None, metric: str) -> str:
    """Difference cell (with interval) and p cell; significant ones bold, green when the
    compared model is better on this metric (lower loss, higher accuracy), red when worse."""
    from tunelab.metrics.classification import primary_metric_mode

    if not t or t.get("diff") is None:
        return "<td>—</td><td>—</td>"
    p = t.get("p_value")
    sig = " sig" if p is not None and p < ALPHA else ""
    worse = t["diff"] < 0 if primary_metric_mode(metric) == "max" else t["diff"] > 0
    neg = " neg" if worse else ""
    if metric in NO_DIRECTION:  # longer is neither better nor worse: no colour
        neg, sig = "", " bold" if sig else ""
    text = f"{t['diff']:+.4f}"
    if t.get("low") is not None:
        text += f" <span class=ci>[{t['low']:+.4f}, {t['high']:+.4f}]</span>"
    return f"<td class='{neg}{sig}'>{text}</td><td>{_num(p, 3)}</td>"


def _group_head(lead: list[str], models: list[dict], sub: list[str]) -> str:
    """Two header rows: the lead columns spanning both, then each model over its columns."""
    top = "".join(f"<th rowspan=2>{_esc(c)}</th>" for c in lead)
    top += "".join(f"<th class=grp colspan={len(sub)}>{_esc(m['name'])}</th>" for m in models)
    low = "".join(f"<th>{_esc(c)}</th>" for _ in models for c in sub)
    return f"<tr>{top}</tr><tr>{low}</tr>"


def _header(report: dict) -> str:
    s = report["settings"]
    items = [("data", _esc(report["data"])), ("rows", _num(report["rows"]))]
    items.append(("task", _esc(report["task"])))
    for m in report["models"]:
        where = m["spec"] + (f"  (run {m['run']})" if m.get("run") else "")
        items.append((f"model: {m['name']}", _esc(where)))
    ci = f"{int(s['level'] * 100)}% percentile bootstrap, {s['bootstrap']} resamples, seed {s['seed']}"
    items.append(("intervals", ci if s["bootstrap"] else "none (--bootstrap 0)"))
    names = ", ".join(m["name"] for m in report["models"])
    return f"<h1>Evaluation: {_esc(names)}</h1><div class=kv>{_kv_table(items)}</div>"


def _headline(report: dict) -> str:
    models, comps = report["models"], report["comparison"]
    head = "<tr><th>metric</th>" + "".join(f"<th>{_esc(m['name'])}</th>" for m in models)
    for c in comps:
        head += f"<th>{_esc(c['name'])} − {_esc(c['baseline'])}</th><th>p</th>"
    body = ""
    for metric in report["headline"]:
        body += f"<tr><td>{_esc(metric)}</td>"
        body += "".join(f"<td>{_ci(m['ci'].get(metric))}</td>" for m in models)
        body += "".join(_diff(c["tests"].get(metric), metric) for c in comps) + "</tr>"
    notes = ""
    for c in comps:
        mc = c["tests"].get("mcnemar")
        if mc:
            notes += (
                f"<p>McNemar ({_esc(c['name'])} vs {_esc(c['baseline'])}): only "
                f"{_esc(c['baseline'])} right on {mc['a_only']} rows, only {_esc(c['name'])} on "
                f"{mc['b_only']}; exact p = {_num(mc['p_value'], 4)}.</p>"
            )
    if comps:
        notes += (
            "<p class=muted>Differences: later model minus the first, paired bootstrap on the "
            f"same resampled rows; bold when p &lt; {ALPHA} (green: better, red: worse).</p>"
        )
    return f"<h2>Metrics</h2><div class=wrap><table>{head}</tr>{body}</table></div>{notes}"


def _classification(report: dict, tmp: Path) -> str:
    from tunelab.evaluation.report.calibration import plot_reliability
    from tunelab.evaluation.run_report.plots import plot_confusion_matrix

    models = report["models"]
    d0 = models[0]["details"]
    names = d0["labels"]
    parts = ["<h2>Classification</h2>"]
    figs = ""
    for i, m in enumerate(models):
        cm = m["details"].get("confusion_matrix")
        if cm:
            png = plot_confusion_matrix(cm, names, tmp / f"cm{i}.png", title=m["name"])
            figs += (
                f'<figure><img alt="confusion matrix {_esc(m["name"])}" src="{_png_uri(png)}">'
                f"<figcaption>{_esc(m['name'])}</figcaption></figure>"
            )
    if figs:
        parts.append(f"<h3>Confusion matrices</h3><div class=grid>{figs}</div>")
    head = _group_head(["class", "support"], models, ["precision", "recall", "F1"])
    body = ""
    for name in names:
        support = d0["per_class"][name]["support"]
        body += f"<tr><td>{_esc(name)}</td><td>{_num(support)}</td>"
        for m in models:
            c = m["details"]["per_class"][name]
            body += "".join(f"<td>{_num(c[k])}</td>" for k in ("precision", "recall", "f1"))
        body += "</tr>"
    parts.append(f"<h3>Per class</h3><div class=wrap><table>{head}{body}</table></div>")
    curves = [(m["name"], m["details"]["calibration"]) for m in models]
    if any(c["n"] for _, c in curves):
        png = plot_reliability(curves, tmp / "reliability.png")
        rows = "".join(
            f"<tr><td>{_esc(n)}</td><td>{_num(c['ece'])}</td><td>{_num(c['mce'])}</td></tr>"
            for n, c in curves
        )
        parts.append(
            "<h3>Calibration</h3><p class=muted>Confidence = probability of the predicted "
            "class; ECE = bin-weighted gap between confidence and accuracy (10 bins).</p>"
            f"<div class=grid><figure><img alt='reliability diagram' src='{_png_uri(png)}'>"
            f"</figure><table><tr><th>model</th><th>ECE</th><th>MCE</th></tr>{rows}</table></div>"
        )
    for m in models:
        mistakes = m["details"].get("mistakes")
        if mistakes is None:
            continue
        rows = "".join(
            f"<tr><td>{r['row']}</td><td class=text>{_esc(r['text'])}</td>"
            f"<td>{_esc(r['label'])}</td><td>{_esc(r['predicted'])}</td>"
            f"<td>{_num(r['confidence'])}</td></tr>"
            for r in mistakes
        )
        parts.append(
            f"<h3>Most confident mistakes: {_esc(m['name'])}</h3>"
            + (
                "<table><tr><th>row</th><th class=l>text</th><th>label</th><th>predicted</th>"
                f"<th>confidence</th></tr>{rows}</table>"
                if rows
                else "<p>no mistakes</p>"
            )
        )
    return "".join(parts)


def _ner(report: dict) -> str:
    models = report["models"]
    types = sorted(set().union(*(m["details"]["per_type"] for m in models)))
    head = _group_head(["entity type", "support"], models, ["precision", "recall", "F1"])
    body = ""
    for t in types:
        support = next(
            (
                m["details"]["per_type"][t]["support"]
                for m in models
                if t in m["details"]["per_type"]
            ),
            0,
        )
        body += f"<tr><td>{_esc(t)}</td><td>{_num(support)}</td>"
        for m in models:
            c = m["details"]["per_type"].get(t, {})
            body += "".join(f"<td>{_num(c.get(k))}</td>" for k in ("precision", "recall", "f1"))
        body += "</tr>"
    return (
        "<h2>Entities</h2><p class=muted>Exact-match entities (type, start and end), "
        f"seqeval semantics.</p><div class=wrap><table>{head}{body}</table></div>"
    )


def _slices(report: dict) -> str:
    sl = report.get("slices")
    if not sl:
        return ""
    metrics = [k for k in report["headline"]][:3]
    models = report["models"]
    head = _group_head([sl["column"], "rows"], models, metrics)
    body = ""
    for s in sl["slices"]:
        cls = " class=small" if s["small"] else ""
        body += f"<tr{cls}><td>{_esc(s['value'])}</td><td>{_num(s['n'])}</td>"
        for m in models:
            gaps = sl["gaps"].get(m["name"], {})
            for k in metrics:
                g = gaps.get(k) or {}
                mark = (
                    " class=best"
                    if g.get("best_slice") == s["value"]
                    else " class=worst"
                    if g.get("worst_slice") == s["value"]
                    else ""
                )
                body += f"<td{mark}>{_ci(s['models'][m['name']].get(k))}</td>"
        body += "</tr>"
    body += "<tr><th>gap (best − worst)</th><th></th>"
    for m in models:
        gaps = sl["gaps"].get(m["name"], {})
        body += "".join(
            f"<th class=worst>{_num((gaps.get(k) or {}).get('gap'))}</th>" for k in metrics
        )
    body += "</tr>"
    over = "slices with at least" if sl["gap_over"] == "large" else "all slices (too few with"
    note = (
        f"<p class=muted>Green: best slice, red: worst, per model and metric. The gap is taken "
        f"over {over} {sl['min_rows']} rows{')' if sl['gap_over'] != 'large' else ''}; "
        f"grey rows have fewer than {sl['min_rows']} rows, so their numbers are noisy.</p>"
    )
    return (
        f"<h2>Slices by {_esc(sl['column'])}</h2>"
        f"<div class=wrap><table class=two>{head}{body}</table></div>{note}"
    )


def _diagnosis(report: dict, tmp: Path) -> str:
    from tunelab.evaluation.diagnosis.plot import plot_diagnosis

    parts = []
    for i, (name, d) in enumerate((report.get("diagnosis") or {}).items()):
        parts.append(f"<h3>{_esc(name)} <span class=muted>({_esc(d['run'])})</span></h3>")
        records = d.get("records") or []
        if records:
            png = plot_diagnosis(records, d, tmp / f"diag{i}.png")
            parts.append(f"<img alt='training diagnosis {_esc(name)}' src='{_png_uri(png)}'>")
        rows = "".join(
            f"<tr><td class={_esc(f['severity'])}>{_esc(f['severity'])}</td>"
            f"<td>{_esc(f['kind'])}</td><td>{_num(f.get('step'))}</td>"
            f"<td class=text>{_esc(f['message'])}</td><td class=text>{_esc(f['advice'])}</td></tr>"
            for f in d.get("findings", [])
        )
        if rows:
            parts.append(
                "<table class=diag><tr><th>severity</th><th>finding</th><th>step</th><th>what</th>"
                f"<th>advice</th></tr>{rows}</table>"
            )
    return "<h2>Training diagnosis</h2>" + "".join(parts) if parts else ""


def render_eval_html(report: dict, outputs: list[RowOutputs]) -> str:
    """The whole page for a report dict (as evaluate_report builds it) and its outputs."""
    from tunelab.evaluation.report.build import jsonable

    data = jsonable(report)  # numbers as plain floats, no numpy arrays
    for src, d in zip(report.get("diagnosis", {}).values(), data.get("diagnosis", {}).values()):
        d["records"] = src.get("records") or []
    parts = [_header(data), _headline(data)]
    with tempfile.TemporaryDirectory(prefix="tunelab-eval-") as tmp:
        task = data["task"]
        if task == "classification":
            parts.append(_classification(data, Path(tmp)))
        elif task == "token-classification":
            parts.append(_ner(data))
        elif task in ("causal-lm", "seq2seq"):
            from tunelab.evaluation.report.generation import generation_html

            parts.append(generation_html(outputs))
        parts.append(_slices(data))
        parts.append(_diagnosis(data, Path(tmp)))
    title = "Evaluation: " + ", ".join(m["name"] for m in data["models"])
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>{_esc(title)}</title><style>{_CSS}{_EXTRA_CSS}</style></head><body>"
        + "".join(parts)
        + "</body></html>\n"
    )
