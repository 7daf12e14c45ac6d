"""Windows of logged rows and every statistic of one window against the reference.

`window_stats` returns plain JSON (floats, ints, str, lists, dicts; NaN and inf become None)
with the sections of the issue 15 contract: embedding, prediction, input, generation, ops,
estimate. Only rows answered with status 200 count for the model statistics; every row
counts for ops. `ref` is used by attribute only (monitor.reference.Reference or anything
shaped like it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tunelab.errors import ConfigError
from tunelab.monitor import drift, health, predictions_drift
from tunelab.monitor.estimate import Calibrator, estimate_performance, fit_calibrator, macro_f1
from tunelab.monitor.generation_stats import generation_stats
from tunelab.monitor.ops import ops_stats

SEED = 0
MMD_PERMUTATIONS = 500
DOMAIN_PERMUTATIONS = 200
MAX_REF = 1000


def to_json(value: Any) -> Any:
    """`value` with numpy types turned into Python ones and NaN/inf into None."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_json(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    return value


def split_windows(rows: Sequence[dict], size: int) -> list[list[dict]]:
    """Consecutive windows of `size` rows in the given (time) order; a trailing partial
    window smaller than half of `size` joins the one before it (a 20-row tail would give a
    noisy window of its own)."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ConfigError("monitor.window", "must be a positive integer", size, has_value=True)
    rows = list(rows)
    windows = [rows[i : i + size] for i in range(0, len(rows), size)]
    if len(windows) > 1 and len(windows[-1]) < size / 2:
        windows[-2].extend(windows.pop())
    return windows


def slices(rows: Sequence[dict], key: str = "group") -> dict[str, list[dict]]:
    """Rows grouped by row["meta"][key] (as str), in first-seen order; rows without it are
    left out."""
    out: dict[str, list[dict]] = {}
    for row in rows:
        meta = row.get("meta")
        if isinstance(meta, dict) and meta.get(key) is not None:
            out.setdefault(str(meta[key]), []).append(row)
    return out


_CALIBRATORS: dict[int, tuple[object, Calibrator]] = {}


def calibrator_of(ref: Any) -> Calibrator:
    """The validation calibrator of `ref`, fitted once per Reference object."""
    hit = _CALIBRATORS.get(id(ref))
    if hit is not None and hit[0] is ref:
        return hit[1]
    cal = fit_calibrator(ref.val_probs, ref.val_labels, seed=SEED)
    if len(_CALIBRATORS) > 16:
        _CALIBRATORS.clear()
    _CALIBRATORS[id(ref)] = (ref, cal)
    return cal


def _embedding_section(ok: list[dict], ref: Any) -> dict:
    kept = [r for r in ok if r.get("embedding") is not None]
    ref_emb = getattr(ref, "embeddings", None)
    if not kept or ref_emb is None or len(ref_emb) == 0:
        return {"mmd2": None, "mmd_p": None, "domain_auc": None, "domain_p": None, "newest": []}
    cur = np.stack([np.asarray(r["embedding"], dtype=np.float32) for r in kept])
    ref_emb = np.asarray(ref_emb, dtype=np.float32)
    mmd2, mmd_p = drift.mmd_test(
        ref_emb, cur, permutations=MMD_PERMUTATIONS, seed=SEED, max_ref=MAX_REF
    )
    auc, dom_p, newest = drift.domain_classifier(
        ref_emb, cur, seed=SEED, max_ref=MAX_REF, permutations=DOMAIN_PERMUTATIONS
    )
    return {
        "mmd2": mmd2,
        "mmd_p": mmd_p,
        "domain_auc": auc,
        "domain_p": dom_p,
        "newest": [kept[i].get("id") for i in newest],
    }


def _ref_pred_counts(ref: Any, names: list[str]) -> np.ndarray | None:
    for attr in ("pred_labels", "val_labels"):
        idx = getattr(ref, attr, None)
        if idx is not None and np.ndim(idx) == 1 and len(idx):
            return np.bincount(np.asarray(idx, dtype=np.int64), minlength=len(names))[: len(names)]
    probs = getattr(ref, "val_probs", None)
    if probs is not None and np.ndim(probs) == 2 and len(probs):
        return np.bincount(np.asarray(probs).argmax(axis=1), minlength=len(names))
    return None


def _has_labels(ref: Any) -> bool:
    return getattr(ref, "kind", None) == "classify" and bool(getattr(ref, "labels", None))


def _prediction_section(ok: list[dict], ref: Any) -> dict | None:
    if not _has_labels(ref):
        return None
    names = list(ref.labels)
    cur = predictions_drift.label_counts([r.get("label") for r in ok], names)
    ref_counts = _ref_pred_counts(ref, names)
    n_cur = int(cur.sum())
    cur_share = cur / n_cur if n_cur else np.full(len(names), np.nan)
    if ref_counts is None or ref_counts.sum() == 0:
        ref_share = np.full(len(names), np.nan)
        psi = chi2 = chi2_p = float("nan")
    else:
        ref_share = ref_counts / ref_counts.sum()
        psi = predictions_drift.psi(ref_share, cur_share) if n_cur else float("nan")
        chi2, chi2_p = predictions_drift.chi2_test(ref_counts, cur)
    conf = [r.get("confidence") for r in ok]
    return {
        "psi": psi,
        "chi2": chi2,
        "chi2_p": chi2_p,
        "label_share": dict(zip(names, cur_share)),
        "ref_label_share": dict(zip(names, ref_share)),
        "confidence_hist": predictions_drift.confidence_hist(conf),
        "mean_confidence": predictions_drift.mean_confidence(conf),
    }


def _input_section(ok: list[dict], ref: Any) -> dict:
    n_tokens = [r.get("n_tokens") for r in ok]
    mean, p95 = health.length_stats(n_tokens)
    ref_tokens = getattr(ref, "n_tokens", None)
    ref_tokens = [] if ref_tokens is None else list(np.asarray(ref_tokens).tolist())
    ref_unk = getattr(ref, "n_unk", None)
    ref_unk = [] if ref_unk is None else list(np.asarray(ref_unk).tolist())
    return {
        "length_mean": mean,
        "length_p95": p95,
        "ref_length_mean": health.length_stats(ref_tokens)[0],
        "length_ks_p": health.length_ks(n_tokens, ref_tokens),
        "unk_rate": health.unk_rate([r.get("n_unk") for r in ok], n_tokens),
        "ref_unk_rate": health.unk_rate(ref_unk, ref_tokens),
        "languages": health.languages(r.get("text") for r in ok),
        "ref_languages": dict(getattr(ref, "languages", None) or {}),
    }


def _generation_section(ok: list[dict], ref: Any) -> dict | None:
    gen_rows = [r for r in ok if r.get("kind") == "generate"]
    ref_gen = getattr(ref, "generation", None)
    if not gen_rows and ref_gen is None:
        return None
    return generation_stats([r.get("output") for r in gen_rows], ref_gen)


def row_probs(row: dict, names: list[str]) -> list[float] | None:
    out = row.get("output")
    scores = out.get("scores") if isinstance(out, dict) else None
    if not isinstance(scores, dict) or row.get("label") is None:
        return None
    try:
        return [float(scores[n]) for n in names]
    except (KeyError, TypeError, ValueError):
        return None


def _estimate_section(ok: list[dict], ref: Any) -> dict | None:
    """The label-free estimate of the window; where rows carry a true label (feedback), the
    real accuracy and macro F1 of those rows, the estimate of the same rows, and its error."""
    if not _has_labels(ref) or getattr(ref, "val_probs", None) is None:
        return None
    val_labels = getattr(ref, "val_labels", None)
    if val_labels is None or np.ndim(val_labels) != 1 or len(val_labels) == 0:
        return None  # multi-label (V, C) targets: no single-label accuracy to estimate
    names = list(ref.labels)
    cal = calibrator_of(ref)

    def probs_of(rows):
        probs = [p for p in (row_probs(r, names) for r in rows) if p is not None]
        return np.asarray(probs, dtype=np.float64).reshape(-1, len(names))

    est = estimate_performance(cal, probs_of(ok))
    est["calibration"] = cal.method
    index = {n: i for i, n in enumerate(names)}
    labelled = [
        r
        for r in ok
        if r.get("true_label") in index and r.get("label") in index and row_probs(r, names)
    ]
    est["n_labelled"] = len(labelled)
    est["true_accuracy"] = est["true_f1_macro"] = None
    est["labelled_estimate"] = est["estimate_error"] = None
    if labelled:
        pred = np.array([index[r["label"]] for r in labelled])
        true = np.array([index[r["true_label"]] for r in labelled])
        est["true_accuracy"] = float(np.mean(pred == true))
        est["true_f1_macro"] = float(macro_f1(pred, true, len(names))[0])
        same_rows = estimate_performance(cal, probs_of(labelled))["accuracy"]
        est["labelled_estimate"] = same_rows
        est["estimate_error"] = same_rows - est["true_accuracy"]
    return est


def window_stats(rows: Sequence[dict], ref: Any) -> dict:
    """Every statistic of one window of logged rows against the reference (see module doc)."""
    rows = list(rows)
    ok = [r for r in rows if r.get("status") == 200]
    return to_json(
        {
            "embedding": _embedding_section(ok, ref),
            "prediction": _prediction_section(ok, ref),
            "input": _input_section(ok, ref),
            "generation": _generation_section(ok, ref),
            "ops": ops_stats(rows),
            "estimate": _estimate_section(ok, ref),
        }
    )
