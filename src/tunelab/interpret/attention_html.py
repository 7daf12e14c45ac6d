"""A self-contained interactive HTML view of attention maps (no CDN, no network).

The page has a layer selector (plus "Rollout"), a head selector (plus "Mean of heads"), a
canvas heatmap with token labels (hover a cell: "from -> to: weight"), the input as token
chips (click one to shade what it attends to) and bertviz-like token-to-token lines.

The weights are embedded as JSON: the (L, H, T, T) attentions quantised to uint16
(resolution 1.5e-5) and base64-encoded, about 2.7 bytes a value instead of ~8 as decimal
text, so a 30-layer, 9-head model on 128 tokens stays near 12 MB. Every '<', '>' and '&' in
the JSON is written as a \\uXXXX escape, so no token text (say "</script>" or "<!--") can end
or confuse the script block (templates.script_json); the title is HTML-escaped; token text
reaches the page only through `textContent` in the script. The page is
templates/attention.html.j2 around attention_view.html.j2, with attention.css and
attention.js pasted inline.
"""

from __future__ import annotations

import base64
import hashlib

import numpy as np

from tunelab.interpret.attention import significant
from tunelab.templates import render, script_json


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
    payload = script_json(data)
    context = {
        "title": title,
        "root_id": "tla-" + hashlib.sha1(payload.encode("utf-8")).hexdigest()[:10],
        "model": str(data["model"] or "model"),
        "T": data["T"],
        "L": data["L"],
        "H": data["H"],
        "head_fusion": str(data["head_fusion"]),
        "payload": payload,
    }
    return render("attention_view.html.j2" if fragment else "attention.html.j2", **context)
