"""Attention maps of a transformers model for one input, attention rollout, and their files.

`attention_maps` runs the model once with `output_attentions=True` and returns every layer's
and head's attention weights plus the rollout. transformers only returns attention weights
from its "eager" attention implementation (sdpa and flash kernels never materialise them),
so the call switches the model to eager and restores the previous implementation afterwards,
also when the forward pass fails.

Works for encoders with any head (BERT classifiers, token classifiers, bare encoders), causal
LMs (Llama and relatives, peft-wrapped or not) and the encoder of seq2seq models. The input
is tokenized with the model's own tokenizer and its own special tokens ([CLS]/[SEP] for
BERT, whatever the tokenizer adds for a causal LM).

Figures live in attention_plots.py, the interactive page in attention_html.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tunelab.errors import TunelabError

# stem.json holds the full (L, H, T, T) weights only up to this many values (~2 MB of JSON);
# beyond it the HTML page (compact binary encoding) is the place to read them
JSON_MAX_VALUES = 200_000
HEAD_FUSIONS = ("mean", "max", "min")


def _unwrap(model: Any) -> Any:
    """The transformers model inside a peft wrapper (PeftModel and its task subclasses)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


@contextlib.contextmanager
def eager_attention(model: Any) -> Iterator[None]:
    """Switch `model` (or the transformers model inside its peft wrapper) to the eager
    attention implementation for the block, then restore the implementation it had."""
    base = _unwrap(model)
    config = getattr(base, "config", None)
    before = getattr(config, "_attn_implementation", None)
    switch = getattr(base, "set_attn_implementation", None)
    if before in (None, "eager") or not callable(switch):
        yield  # already eager, or an old-style model that always returns its weights
        return
    switch("eager")
    try:
        yield
    finally:
        switch(before)


def _display_tokens(tokenizer: Any, tokens: list[str]) -> list[str]:
    """Readable labels: byte-level BPE markers (Ġ = space, Ċ = newline) decoded, whitespace
    made visible, WordPiece '##' continuations kept as they are."""
    labels = []
    for token in tokens:
        try:
            text = tokenizer.convert_tokens_to_string([token])
        except Exception:  # some tokenizers refuse single special tokens
            text = token
        text = text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
        labels.append(text.strip() or ("␣" * max(1, len(text))))
    return labels


def attention_maps(
    model: Any,
    tokenizer: Any,
    text: str,
    text_pair: str | None = None,
    *,
    max_length: int = 128,
    head_fusion: str = "mean",
) -> dict:
    """Attention weights of `model` on one input.

    Returns {"tokens": raw tokens, "labels": readable token labels, "token_ids",
    "special": which tokens are the tokenizer's special tokens, "attentions": float32
    (layers, heads, T, T) where row i holds what token i attends to (rows sum to 1),
    "rollout": (T, T) from `attention_rollout`, "model": the model's type name,
    "causal": whether the model is a decoder, "head_fusion"}.
    """
    import torch

    if not isinstance(text, str) or not text.strip():
        raise TunelabError("attention: the input text is empty")
    if max_length < 2:
        raise TunelabError(f"attention: max_length must be >= 2, got {max_length}")
    base = _unwrap(model)
    config = base.config
    enc = tokenizer(
        text, text_pair, truncation=True, max_length=max_length, return_tensors="pt"
    )  # input_ids (1, T)
    ids = enc["input_ids"]
    if ids.shape[1] == 0:
        raise TunelabError("attention: the tokenizer produced no tokens for the input")
    device = next(base.parameters()).device
    inputs = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
    if "token_type_ids" in enc and getattr(config, "type_vocab_size", 0) > 1:
        inputs["token_type_ids"] = enc["token_type_ids"].to(device)

    was_training = model.training
    model.eval()
    try:
        with eager_attention(model), torch.no_grad():
            if getattr(config, "is_encoder_decoder", False):
                out = base.get_encoder()(**inputs, output_attentions=True, return_dict=True)
            else:
                out = model(**inputs, output_attentions=True, return_dict=True)
    finally:
        model.train(was_training)
    layers = getattr(out, "attentions", None)
    if not layers or any(a is None for a in layers):
        raise TunelabError(
            f"attention: {type(base).__name__} returned no attention weights "
            "(its attention implementation cannot output them)"
        )
    # per layer (1, H, T', T'); T' > T when peft prompt tuning prepends virtual tokens
    att = torch.stack([a[0].float() for a in layers]).cpu().numpy()  # (L, H, T', T')
    n = ids.shape[1]
    virtual = att.shape[-1] - n
    if virtual > 0:  # drop the virtual tokens (they come first) and renormalise the rows
        att = att[:, :, -n:, -n:]
        att = att / np.clip(att.sum(-1, keepdims=True), 1e-12, None)
    att = att.astype(np.float32)
    tokens = tokenizer.convert_ids_to_tokens(ids[0].tolist())
    special_ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    return {
        "tokens": tokens,
        "labels": _display_tokens(tokenizer, tokens),
        "token_ids": ids[0].tolist(),
        "special": [i in special_ids for i in ids[0].tolist()],
        "attentions": att,
        "rollout": attention_rollout(att, head_fusion=head_fusion),
        "head_fusion": head_fusion,
        "model": type(base).__name__,
        # a decoder's mask leaves the upper triangle at exactly 0
        "causal": bool(n > 1 and not np.triu(att, 1).any()),
        "virtual_tokens": max(0, virtual),
    }


def attention_rollout(
    attentions: np.ndarray, *, head_fusion: str = "mean", add_residual: bool = True
) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020): how much each output position draws on each
    input token through all layers, residual connections included.

    Per layer l: A_l = fusion over heads (mean, max or min) of the (T, T) maps;
    with `add_residual`, A_l = 0.5 * A_l + 0.5 * I; rows renormalised to sum to 1.
    Rollout R = A_L @ ... @ A_2 @ A_1: the first layer is applied first (R_1 = A_1,
    R_l = A_l @ R_{l-1}), so row i of R is the last layer's position i expressed as a mix of
    the input tokens. Rows of R sum to 1.
    """
    att = np.asarray(attentions, dtype=np.float64)
    if att.ndim != 4 or att.shape[-1] != att.shape[-2]:
        raise TunelabError(f"attention rollout needs (layers, heads, T, T), got {att.shape}")
    if head_fusion not in HEAD_FUSIONS:
        raise TunelabError(
            f"attention rollout: head_fusion must be one of {', '.join(HEAD_FUSIONS)}, "
            f"got {head_fusion!r}"
        )
    fused = getattr(att, head_fusion)(axis=1)  # (L, T, T)
    n = att.shape[-1]
    result = np.eye(n)
    for a in fused:  # first layer first
        if add_residual:
            a = 0.5 * a + 0.5 * np.eye(n)
        a = a / np.clip(a.sum(-1, keepdims=True), 1e-12, None)
        result = a @ result
    return result.astype(np.float32)


def maps_summary(maps: dict) -> dict:
    """The JSON-ready part of `maps`: tokens, shape, rollout, and the full attention weights
    only when they are small (<= JSON_MAX_VALUES values)."""
    att = np.asarray(maps["attentions"])
    summary = {
        "model": maps.get("model"),
        "tokens": list(maps["tokens"]),
        "labels": list(maps.get("labels") or maps["tokens"]),
        "token_ids": maps.get("token_ids"),
        "special": maps.get("special"),
        "causal": maps.get("causal"),
        "shape": {"layers": att.shape[0], "heads": att.shape[1], "tokens": att.shape[2]},
        "head_fusion": maps.get("head_fusion", "mean"),
        "rollout": significant(maps["rollout"]),
    }
    if att.size <= JSON_MAX_VALUES:
        summary["attentions"] = np.round(att.astype(np.float64), 6).tolist()
    else:
        summary["attentions"] = None
        summary["attentions_note"] = (
            f"{att.size} values (layers x heads x T x T) exceed {JSON_MAX_VALUES}: "
            "read them in the HTML page"
        )
    return summary


def significant(values: Any, digits: int = 5) -> list:
    """Nested lists of floats kept to `digits` significant digits: deep causal LMs give
    rollout weights around 1e-6 that fixed decimal rounding would flatten to 0."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        return float(f"{float(arr):.{digits}g}")
    return [significant(v, digits) for v in arr]


def select_indices(values: Sequence[int] | None, count: int, what: str) -> list[int]:
    """0-based `values` checked against `count` (all of them when None)."""
    if values is None:
        return list(range(count))
    chosen = [int(v) for v in values]
    bad = [v for v in chosen if not 0 <= v < count]
    if bad or not chosen:
        raise TunelabError(
            f"attention: {what} {bad or chosen} out of range: the model has {count} {what}s "
            f"(0-{count - 1})"
        )
    return chosen
