"""HTML pages of attributions: tokens highlighted red (raise the explained score) or blue
(lower it), shade scaled per row by the largest |value|, the value in each token's hover
title. Self-contained (inline CSS, no scripts, no network); every text is escaped.
"""

from __future__ import annotations

import html

from tunelab.interpret.attributions import METHOD_NAMES

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#1f2328;
 max-width:1400px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 6px;
 border-top:1px solid #d0d7de;padding-top:14px} h3{font-size:14px;margin:6px 0}
h4{font-size:13px;margin:12px 0 4px;color:#57606a}
.meta,.note{color:#57606a;font-size:12px} .cols{display:flex;gap:24px;align-items:flex-start}
.col{flex:1;min-width:0} .row{display:flex;gap:10px;margin:4px 0;align-items:baseline}
.method{width:150px;flex:none;font-size:12px;color:#57606a;text-align:right}
.toks{line-height:1.9;font-size:15px;flex:1;min-width:0;overflow-wrap:anywhere} .t{padding:1px 1px;border-radius:3px}
.special{font-size:11px;color:#8c959f;font-family:monospace}
.legend span{padding:1px 6px;border-radius:3px;margin-right:6px}
table.hm{border-collapse:collapse;font-size:11px;margin-top:6px}
table.hm td{width:22px;height:16px;border:1px solid #fff}
table.hm td.lab{width:auto;text-align:right;padding-right:6px;white-space:nowrap;
 border:none;font-family:monospace}
table.hm th{font-weight:normal;font-family:monospace;height:70px;vertical-align:bottom}
table.hm th div{transform:rotate(-60deg);width:22px;white-space:nowrap}
.bars td{font-size:13px;padding:1px 6px} .bar{height:12px;border-radius:2px}
.gen{background:#f6f8fa;border-radius:6px;padding:6px 10px;font-size:14px;white-space:pre-wrap}
"""

LEGEND = (
    '<p class="legend meta"><span style="background:rgba(220,38,38,.55)">raises</span>'
    '<span style="background:rgba(37,99,235,.55)">lowers</span> the explained score (shade '
    "scaled per row by its largest |value|; hover a token for its value)</p>"
)


def e(x) -> str:
    return html.escape(str(x), quote=True)


def color(v: float, scale: float) -> str:
    """Red for positive, blue for negative; alpha up to 0.8 at |v| = scale."""
    a = 0.0 if scale <= 0 else min(abs(v) / scale, 1.0) * 0.8
    rgb = "220,38,38" if v >= 0 else "37,99,235"
    return f"rgba({rgb},{a:.3f})"


def tokens_html(tokens: list[dict], values: list[float] | None = None) -> str:
    """One highlighted run of tokens (no values: plain)."""
    vals = values or [0.0] * len(tokens)
    scale = max((abs(v) for v, t in zip(vals, tokens) if not t["special"]), default=0.0)
    parts = []
    for t, v in zip(tokens, vals):
        if t["space"] and parts:
            parts.append(" ")  # a real space: lets long prompts wrap between words
        if t["special"]:
            parts.append(f'<span class="t special">{e(t["text"])}</span>')
            continue
        style = f' style="background:{color(v, scale)}"' if values else ""
        parts.append(
            f'<span class="t"{style} title="{e(t["text"])}: {v:+.4f}">{e(t["text"])}</span>'
        )
    return '<div class="toks">' + "".join(parts) + "</div>"


def _prediction(p: dict) -> str:
    if "label" in p:
        return f"predicted <b>{e(p['label'])}</b> (p = {p['score']:.3f})"
    if "entities" in p:
        ents = ", ".join(f"{e(x['text'])} [{e(x['type'])}]" for x in p["entities"])
        return f"entities: {ents or 'none'}"
    return ""


def _heatmap(tokens: list[dict], per: dict, span_tokens: list[str]) -> str:
    """Prompt tokens (rows) x generated tokens (columns); each column scaled on its own."""
    m = per["matrix"]  # (G, P)
    head = "".join(f"<th><div>{e(s)}</div></th>" for s in span_tokens)
    scales = [max((abs(x) for x in col), default=0.0) for col in m]
    rows = []
    for j, t in enumerate(tokens):
        if t["special"]:
            continue
        cells = "".join(
            f'<td style="background:{color(m[g][j], scales[g])}" '
            f'title="{e(t["text"])} -> {e(span_tokens[g])}: {m[g][j]:+.4f}"></td>'
            for g in range(len(m))
        )
        rows.append(f'<tr><td class="lab">{e(t["text"])}</td>{cells}</tr>')
    return (
        f"<h4>per generated token ({e(METHOD_NAMES[per['method']])}; each column scaled "
        f'on its own)</h4><table class="hm"><tr><th></th>{head}</tr>{"".join(rows)}</table>'
    )


def _unit(u: dict, tokens: list[dict]) -> str:
    out = [f"<h4>explaining: {e(u['name'])}</h4>"]
    if "span" in u:
        out.append(f'<div class="gen">{e(u["span"])}</div>')
    for m, vals in u["attributions"].items():
        out.append(
            f'<div class="row"><div class="method">{e(METHOD_NAMES[m])}</div>'
            f"{tokens_html(tokens, vals)}</div>"
        )
    if "ig" in u["attributions"]:
        total = sum(u["attributions"]["ig"])
        diff = u["score"] - u["baseline_score"]
        out.append(
            f'<p class="note">IG: sum {total:+.4f}; score {u["score"]:.4f} - baseline '
            f"{u['baseline_score']:.4f} = {diff:+.4f} (convergence delta "
            f"{u.get('convergence_delta', 0):+.2e})</p>"
        )
    if u.get("warning"):
        out.append(f'<p class="note" style="color:#cf222e">{e(u["warning"])}</p>')
    if "per_token" in u:
        out.append(_heatmap(tokens, u["per_token"], u["span_tokens"]))
    return "".join(out)


def _column(block: dict, title: str) -> str:
    out = [
        f"<h3>{e(title)}: {e(block['model'])}</h3>",
        f'<p class="meta">{_prediction(block["prediction"])}</p>',
    ]
    if "own_generation" in block:
        out.append(
            f'<p class="meta">says by itself:</p><div class="gen">'
            f"{e(block['own_generation'])}</div>"
        )
    if not block["units"]:
        out.append(
            '<p class="note">nothing to explain (no entity predicted; pick a word '
            "with --word)</p>" + tokens_html(block["tokens"])
        )
    out += [_unit(u, block["tokens"]) for u in block["units"]]
    return '<div class="col">' + "".join(out) + "</div>"


def render_report(report: dict) -> str:
    """The explain.html page of an explain() report."""
    s = report["settings"]
    body = [
        f"<h1>Token attributions: {e(report['model'])}</h1>",
        f'<p class="meta">task {e(report["task"])} · methods '
        f"{e(', '.join(METHOD_NAMES[m] for m in report['methods']))} · score "
        f"{e('span log-likelihood' if report['task'] == 'causal-lm' else s['score'])}"
        f" · baseline token {e(s['baseline_token'])} · IG steps "
        f"{s['ig_steps']}</p>",
        LEGEND,
    ]
    for i, t in enumerate(report["texts"]):
        body.append(
            f"<h2>Text {i + 1}</h2><p>{e(t['text'])}"
            + (f"<br><i>pair:</i> {e(t['pair'])}" if t.get("pair") else "")
            + "</p>"
        )
        cols = [_column(t, "model")]
        if "compare" in t:
            cols.append(_column(t["compare"], "compared with"))
        body.append('<div class="cols">' + "".join(cols) + "</div>")
        if t.get("attention"):
            links = " · ".join(f'<a href="{e(p)}">{e(p)}</a>' for p in t["attention"].values())
            body.append(f'<p class="meta">attention: {links}</p>')
    return page("tunelab explain", "".join(body))


def page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{e(title)}</title>'
        f"<style>{CSS}</style></head><body>{body}</body></html>\n"
    )


def render_global(report: dict) -> str:
    """global.html: per class, bars of the words that most push toward it."""
    body = [
        f"<h1>Global token importance: {e(report['model'])}</h1>",
        f'<p class="meta">{report["rows"]} rows of {e(report["data"])} · method '
        f"{e(METHOD_NAMES[report['method']])} · words seen at least {report['min_count']} "
        "times, ranked by mean attribution toward the class</p>",
    ]
    cols = []
    for cls, words in report["classes"].items():
        scale = max((abs(w["mean"]) for w in words), default=0.0) or 1.0
        rows = "".join(
            f'<tr><td>{e(w["word"])}</td><td><div class="bar" style="width:'
            f'{max(2, 260 * abs(w["mean"]) / scale):.0f}px;background:{color(w["mean"], scale)}"'
            f' title="mean {w["mean"]:+.4f}"></div></td><td class="meta">{w["mean"]:+.3f}</td>'
            f'<td class="meta">{w["pushes"]}/{w["count"]}</td></tr>'
            for w in words
        )
        cols.append(
            f'<div class="col"><h3>toward {e(cls)}</h3><table class="bars"><tr>'
            '<td></td><td></td><td class="meta">mean</td><td class="meta">pushes/seen'
            f"</td></tr>{rows}</table></div>"
        )
    body.append('<div class="cols">' + "".join(cols) + "</div>")
    return page("tunelab explain --global", "".join(body))
