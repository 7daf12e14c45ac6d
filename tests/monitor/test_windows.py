"""window_stats end to end on synthetic logged rows, windows and slices, and the default
rules' false-alarm rate on a no-shift stream."""

import json
from dataclasses import dataclass

import numpy as np
import pytest

from tunelab.monitor.rules import DEFAULT_RULES, evaluate
from tunelab.monitor.windows import slices, split_windows, window_stats

LABELS = ["neg", "pos"]
TEXTS = ["a fine film with a lovely cast", "this was a dull and boring movie"]


@dataclass
class Ref:
    model: str
    task: str
    kind: str
    labels: list | None
    embeddings: np.ndarray
    n_tokens: np.ndarray
    n_unk: np.ndarray
    languages: dict
    pred_labels: np.ndarray | None
    val_probs: np.ndarray | None
    val_labels: np.ndarray | None
    generation: dict | None


def _world(rng, n, shift=0.0):
    """Embeddings, token counts and calibrated 2-class probabilities of n inputs."""
    emb = rng.normal(size=(n, 64)).astype(np.float32)
    emb[:, :4] += shift
    p_pos = 1 / (1 + np.exp(-3 * rng.normal(size=n)))
    labels = (rng.random(n) < p_pos).astype(int)
    return emb, rng.poisson(20 + 20 * shift, n), np.c_[1 - p_pos, p_pos], labels


def _ref(rng):
    emb, ntok, probs, labels = _world(rng, 600)
    return Ref(
        model="m",
        task="classification",
        kind="classify",
        labels=LABELS,
        embeddings=emb,
        n_tokens=ntok,
        n_unk=(ntok // 20),
        languages={"en": 1.0},
        pred_labels=probs.argmax(1),
        val_probs=probs,
        val_labels=labels,
        generation=None,
    )


def _rows(rng, n, shift=0.0, start=0):
    emb, ntok, probs, labels = _world(rng, n, shift)
    rows = []
    for i in range(n):
        k = int(probs[i].argmax())
        rows.append(
            {
                "id": f"r{start + i}",
                "kind": "classify",
                "status": 200,
                "latency_ms": 5.0 + i % 7,
                "text": TEXTS[i % 2],
                "label": LABELS[k],
                "confidence": float(probs[i, k]),
                "output": {"label": LABELS[k], "scores": dict(zip(LABELS, probs[i].tolist()))},
                "embedding": emb[i],
                "n_tokens": int(ntok[i]),
                "n_unk": int(ntok[i] // 20),
                "meta": {"group": "a" if i % 3 else "b"},
            }
        )
    return rows


def test_window_stats_sections_and_json():
    rng = np.random.default_rng(0)
    ref = _ref(rng)
    rows = _rows(rng, 120)
    rows.append({"id": "bad", "status": 500, "latency_ms": 1.0, "kind": "classify"})
    s = window_stats(rows, ref)
    json.dumps(s, allow_nan=False)
    assert set(s) == {"embedding", "prediction", "input", "generation", "ops", "estimate"}
    assert set(s["embedding"]) == {"mmd2", "mmd_p", "domain_auc", "domain_p", "newest"}
    assert set(s["prediction"]) == {
        "psi",
        "chi2",
        "chi2_p",
        "label_share",
        "ref_label_share",
        "confidence_hist",
        "mean_confidence",
    }
    assert set(s["input"]) == {
        "length_mean",
        "length_p95",
        "ref_length_mean",
        "length_ks_p",
        "unk_rate",
        "ref_unk_rate",
        "languages",
        "ref_languages",
    }
    assert set(s["ops"]) == {"latency_p50_ms", "latency_p99_ms", "error_rate", "n"}
    assert set(s["estimate"]) == {
        "accuracy",
        "accuracy_low",
        "accuracy_high",
        "f1_macro",
        "f1_low",
        "f1_high",
        "reference_accuracy",
        "true_accuracy",
        "true_f1_macro",
        "n_labelled",
        "labelled_estimate",
        "estimate_error",
        "calibration",
    }
    assert s["generation"] is None and s["estimate"]["true_accuracy"] is None
    assert s["estimate"]["n_labelled"] == 0 and s["estimate"]["estimate_error"] is None
    assert s["ops"]["n"] == 121 and s["ops"]["error_rate"] == pytest.approx(1 / 121)
    assert sum(s["prediction"]["confidence_hist"]["counts"]) == 120  # status 200 only
    assert s["input"]["languages"] == {"en": 1.0}
    assert len(s["embedding"]["newest"]) == 10 and all(
        i.startswith("r") for i in s["embedding"]["newest"]
    )
    est = s["estimate"]
    assert est["accuracy_low"] <= est["accuracy"] <= est["accuracy_high"]


def test_feedback_labels_give_the_real_accuracy_beside_the_estimate():
    rng = np.random.default_rng(5)
    ref = _ref(rng)
    emb, ntok, probs, labels = _world(rng, 400)
    rows = _rows(np.random.default_rng(6), 400)
    for i, row in enumerate(rows):  # true labels on half the rows, drawn as the world does
        if i % 2 == 0:
            row["true_label"] = LABELS[int(labels[i])]
            row["output"]["scores"] = dict(zip(LABELS, probs[i].tolist()))
            row["label"] = LABELS[int(probs[i].argmax())]
    est = window_stats(rows, ref)["estimate"]
    labelled = rows[::2]
    true = np.mean([r["label"] == r["true_label"] for r in labelled])
    assert est["n_labelled"] == 200 and est["true_accuracy"] == pytest.approx(true)
    assert 0.0 < est["true_f1_macro"] <= 1.0
    assert est["estimate_error"] == pytest.approx(est["labelled_estimate"] - true)
    assert abs(est["estimate_error"]) < 0.1  # calibrated world: the estimate is close


def test_shifted_window_alerts_and_unlabelled_kind_has_no_prediction():
    rng = np.random.default_rng(1)
    ref = _ref(rng)
    s = window_stats(_rows(rng, 150, shift=1.0), ref)
    fired = {a["stat"] for a in evaluate(s, DEFAULT_RULES, window=0)}
    assert {"embedding.mmd_p", "embedding.domain_p", "input.length_ks_p"} <= fired
    ref.kind, ref.labels = "entities", None
    s = window_stats(_rows(rng, 50), ref)
    assert s["prediction"] is None and s["estimate"] is None


def test_default_rules_false_alarm_rate_on_no_shift_stream():
    rng = np.random.default_rng(2)
    ref = _ref(rng)
    rows = _rows(rng, 30 * 100)
    windows = split_windows(rows, 100)
    alerted = sum(
        bool(evaluate(window_stats(w, ref), DEFAULT_RULES, window=i)) for i, w in enumerate(windows)
    )
    assert alerted / len(windows) <= 0.15  # nominal <= 5%: at most ~1.5 of 30 windows


def test_split_windows_and_slices():
    rows = [{"id": i, "meta": {"group": "ab"[i % 2]} if i % 5 else None} for i in range(230)]
    sizes = [len(w) for w in split_windows(rows, 100)]
    assert sizes == [100, 130]  # a 30-row tail (< 50) merges into the previous window
    assert [len(w) for w in split_windows(rows[:160], 100)] == [100, 60]
    assert split_windows([], 100) == []
    with pytest.raises(Exception, match="positive integer"):
        split_windows(rows, 0)
    groups = slices(rows)
    assert set(groups) == {"a", "b"} and sum(map(len, groups.values())) == 230 - 46
