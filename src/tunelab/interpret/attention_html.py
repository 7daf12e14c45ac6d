"""A self-contained interactive HTML view of attention maps (no CDN, no network).

The page has a layer selector (plus "Rollout"), a head selector (plus "Mean of heads"), a
canvas heatmap with token labels (hover a cell: "from -> to: weight"), the input as token
chips (click one to shade what it attends to) and bertviz-like token-to-token lines.

The weights are embedded as JSON: the (L, H, T, T) attentions quantised to uint16
(resolution 1.5e-5) and base64-encoded, about 2.7 bytes a value instead of ~8 as decimal
text, so a 30-layer, 9-head model on 128 tokens stays near 12 MB. Every '<', '>' and '&' in
the JSON is written as a \\uXXXX escape, so no token text (say "</script>" or "<!--") can end
or confuse the script block; the title is HTML-escaped; token text reaches the page only
through `textContent` in the script.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json

import numpy as np

from tunelab.interpret.attention import significant
from tunelab.interpret.attention_assets import CSS, JS


def _json_for_script(obj: object) -> str:
    """JSON safe inside <script>: no '<', '>' or '&' left (\\u escapes parse back the same)."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def encode_attentions(attentions: np.ndarray) -> str:
    """(L, H, T, T) weights in [0, 1] -> base64 of little-endian uint16 round(w * 65535)."""
    att = np.clip(np.asarray(attentions, dtype=np.float64), 0.0, 1.0)
    return base64.b64encode(np.round(att * 65535).astype("<u2").tobytes()).decode("ascii")


def decode_attentions(data: str, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of `encode_attentions` (what the page's script does), for checks and tests."""
    raw = np.frombuffer(base64.b64decode(data), dtype="<u2")
    return (raw.astype(np.float32) / 65535).reshape(shape)


def page_data(maps: dict, title: str) -> dict:
    """What the page's script reads: shape, tokens, labels, encoded weights, rollout."""
    att = np.asarray(maps["attentions"])
    n_layers, n_heads, n = att.shape[:3]
    tokens = [str(t) for t in maps["tokens"]]
    return {
        "title": title,
        "model": maps.get("model"),
        "L": int(n_layers),
        "H": int(n_heads),
        "T": int(n),
        "tokens": tokens,
        "labels": [str(t) for t in (maps.get("labels") or tokens)],
        "special": [bool(s) for s in (maps.get("special") or [False] * n)],
        "causal": bool(maps.get("causal", False)),
        "head_fusion": maps.get("head_fusion", "mean"),
        "att": encode_attentions(att),
        "rollout": significant(maps["rollout"]),
    }


def attention_html(maps: dict, *, title: str, fragment: bool = False) -> str:
    """The interactive view of `maps` (from `attention_maps`) as a full HTML page, or with
    `fragment=True` as one <div> (styles and script inside, scoped by a unique id) to embed
    in another report. Renders offline: all CSS and JS are inline."""
    data = page_data(maps, title)
    payload = _json_for_script(data)
    root_id = "tla-" + hashlib.sha1(payload.encode("utf-8")).hexdigest()[:10]
    n, n_layers, n_heads = data["T"], data["L"], data["H"]
    meta = (
        f"{html.escape(str(data['model'] or 'model'))} · {n} tokens · {n_layers} layers × "
        f"{n_heads} heads · rollout fuses heads by {html.escape(str(data['head_fusion']))}"
    )
    body = f"""<div class="tla" id="{root_id}">
<h1>{html.escape(title)}</h1>
<p class="tla-meta">{meta}</p>
<div class="tla-controls">
  <label>Layer <select data-role="layer"></select></label>
  <label>Head <select data-role="head"></select></label>
  <label><input type="checkbox" data-role="rel" checked> colours relative to this map's maximum</label>
  <label title="A causal LM's first token often takes most of the weight (an attention sink). Checked, the first token's column and the largest 2% of weights stay out of the colour maximum and show saturated."><input type="checkbox" data-role="sink"> ignore the attention sink in the colour scale</label>
  <span class="tla-legend">0 <span class="tla-bar" data-role="bar"></span> <span data-role="max">1</span></span>
</div>
<div class="tla-text" data-role="text"></div>
<p class="tla-hint" data-role="hint"></p>
<div class="tla-panels">
  <div class="tla-panel"><h2>Heatmap: rows (from) attend to columns (to)</h2>
    <div class="tla-heat"><canvas data-role="canvas"></canvas><div class="tla-tip" data-role="tip"></div></div>
  </div>
  <div class="tla-panel"><h2>Token to token (hover or click a token on the left)</h2>
    <svg data-role="lines"></svg>
  </div>
</div>
<noscript><p>This view needs JavaScript; the PNG files beside it show the same maps.</p></noscript>
<style>{CSS}</style>
<script type="application/json" class="tla-data">{payload}</script>
<script>{JS.strip()}({json.dumps(root_id)});</script>
</div>"""
    if fragment:
        return body
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>body{{margin:24px;background:#fff}}</style>
</head>
<body>
{body}
</body>
</html>
"""
