"""monitor/shadow.py on pairs whose truth is known: the label-free difference between a shadow
and the served model has the right sign and covers the real difference; identical models
differ by exactly zero; agreement and feedback accuracies are counted from the rows."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tunelab.metrics.stats import wilson
from tunelab.monitor.shadow import compare_version, estimated_difference

NAMES = ["a", "b", "c"]


def _calibrated(rng, n: int, skill: float):
    """n rows of 3 classes: probabilities whose top class is right with probability equal
    to its score (calibrated by construction), the truth drawn accordingly."""
    top = np.clip(rng.normal(skill, 0.1, n), 0.4, 0.99)
    pred = rng.integers(0, 3, n)
    probs = np.full((n, 3), 0.0)
    probs[np.arange(n), pred] = top
    for i in range(n):
        others = [k for k in range(3) if k != pred[i]]
        probs[i, others] = (1 - top[i]) / 2
    right = rng.random(n) < top
    true = np.where(right, pred, (pred + rng.integers(1, 3, n)) % 3)
    return probs, true


def _ref(rng, skill: float):
    probs, true = _calibrated(rng, 2000, skill)
    return SimpleNamespace(labels=NAMES, val_probs=probs, val_labels=true)


def _row(probs) -> dict:
    label = NAMES[int(np.argmax(probs))]
    return {"label": label, "output": {"label": label, "scores": dict(zip(NAMES, probs))}}


def _pairs(served_probs, shadow_probs, true=None) -> list[dict]:
    rows = []
    for i, (a, b) in enumerate(zip(served_probs, shadow_probs)):
        ra, rb = _row(a), _row(b)
        rows.append(
            {
                "label": ra["label"],
                "output": ra["output"],
                "shadow_label": rb["label"],
                "shadow_output": rb["output"],
                "agrees": ra["label"] == rb["label"],
                "status": 200,
                "error": None,
                "kind": "classify",
                "time": float(i),
                "version": "v-served",
                "served_path": "/served",
                "shadow_version": "v-shadow",
                "path": "/shadow",
                "reference": "challenger@m",
                "registry_version": 2,
                "latency_ms": 10.0,
                "shadow_latency_ms": 12.0,
                **({"true_label": NAMES[true[i]]} if true is not None else {}),
            }
        )
    return rows


def test_a_better_shadow_is_estimated_better_and_the_interval_covers_the_truth():
    rng = np.random.default_rng(0)
    n = 1500
    true = rng.integers(0, 3, n)

    def model(skill):  # calibrated predictions of the same truth
        top = np.clip(rng.normal(skill, 0.05, n), 0.4, 0.99)
        right = rng.random(n) < top
        pred = np.where(right, true, (true + rng.integers(1, 3, n)) % 3)
        probs = np.full((n, 3), 0.0)
        probs[np.arange(n), pred] = top
        for i in range(n):
            probs[i, [k for k in range(3) if k != pred[i]]] = (1 - top[i]) / 2
        return probs, pred

    served, served_pred = model(0.6)
    shadow, shadow_pred = model(0.85)
    real = float(np.mean(shadow_pred == true) - np.mean(served_pred == true))
    est = estimated_difference(_ref(rng, 0.6), _ref(rng, 0.85), _pairs(served, shadow))
    assert est["diff"] > 0.1 and est["low"] > 0
    assert est["low"] <= real <= est["high"]
    assert est["shadow"]["accuracy"] > est["served"]["accuracy"]


def test_identical_models_differ_by_exactly_zero():
    rng = np.random.default_rng(1)
    probs, _ = _calibrated(rng, 300, 0.8)
    ref = _ref(rng, 0.8)
    est = estimated_difference(ref, ref, _pairs(probs, probs))
    assert est["diff"] == 0.0 and est["low"] == 0.0 and est["high"] == 0.0


def test_other_label_sets_give_no_estimate():
    rng = np.random.default_rng(2)
    probs, _ = _calibrated(rng, 50, 0.8)
    other = SimpleNamespace(**{**vars(_ref(rng, 0.8)), "labels": ["x", "y", "z"]})
    assert estimated_difference(_ref(rng, 0.8), other, _pairs(probs, probs)) is None


def test_agreement_flips_and_feedback_are_counted_from_the_rows():
    rng = np.random.default_rng(3)
    a, true = _calibrated(rng, 40, 0.7)
    b, _ = _calibrated(rng, 40, 0.7)
    pairs = _pairs(a, b, true)
    pairs[0] |= {"status": 504, "agrees": None, "error": "shadow took longer than 1s"}
    out = compare_version(pairs)
    answered = pairs[1:]
    agreed = sum(r["agrees"] for r in answered)
    assert out["n"] == 40 and out["n_errors"] == 1 and out["n_answered"] == 39
    assert out["agreement"] == pytest.approx(agreed / 39)
    assert (out["agreement_low"], out["agreement_high"]) == pytest.approx(wilson(agreed, 39))
    assert sum(f["n"] for f in out["flips"]) == 39 - agreed
    fb = out["feedback"]
    assert fb["n"] == 39
    assert fb["served_accuracy"] == pytest.approx(
        np.mean([r["label"] == r["true_label"] for r in answered])
    )
    assert fb["shadow_accuracy"] == pytest.approx(
        np.mean([r["shadow_label"] == r["true_label"] for r in answered])
    )
    mc = fb["mcnemar"]
    assert mc["a_only"] == sum(r["label"] == r["true_label"] != r["shadow_label"] for r in answered)
    assert out["estimate"] is None  # no references given
    assert out["errors"] == ["shadow took longer than 1s"]
