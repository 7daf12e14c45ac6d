"""classification_metrics against hand-computed cases."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tunelab.evaluation import classification_metrics, primary_metric_mode

NAMES = ["a", "b", "c"]


def test_single_label_hand_computed():
    # true: a a b b c ; pred: a b b b a
    m = classification_metrics([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], NAMES)
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["n"] == 5
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    # per class: a: P=1/2 R=1/2 F=1/2 ; b: P=2/3 R=1 F=0.8 ; c: P=0 (no preds) R=0 F=0
    pc = m["per_class"]
    assert list(pc) == NAMES
    assert pc["a"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert pc["b"]["precision"] == pytest.approx(2 / 3)
    assert pc["b"]["recall"] == pytest.approx(1.0)
    assert pc["b"]["f1"] == pytest.approx(0.8)
    assert pc["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["f1_macro"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert m["precision_macro"] == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    assert m["recall_macro"] == pytest.approx((0.5 + 1.0 + 0) / 3)
    # weighted by support 2, 2, 1
    assert m["f1_weighted"] == pytest.approx((2 * 0.5 + 2 * 0.8 + 0) / 5)
    # single-label micro averages equal accuracy when every label is scored
    assert m["f1_micro"] == pytest.approx(0.6)
    assert m["precision_micro"] == pytest.approx(0.6)
    json.dumps(m)  # JSON-serialisable: plain floats and ints only
    assert all(type(m[k]) is float for k in m if k not in ("per_class", "confusion_matrix", "n"))


def test_absent_labels_are_in_the_confusion_matrix():
    names = ["neg", "neu", "pos", "other"]
    m = classification_metrics(np.array([0, 0, 2]), np.array([0, 2, 2]), names)
    assert m["confusion_matrix"] == [[1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert m["per_class"]["neu"]["support"] == 0
    assert m["per_class"]["other"]["f1"] == 0.0
    # macro averages over all 4 labels, absent ones count as 0
    f1_neg, f1_pos = 2 / 3, 2 / 3  # neg: P=1 R=1/2 ; pos: P=1/2 R=1
    assert m["f1_macro"] == pytest.approx((f1_neg + f1_pos) / 4)


def test_multi_label_subset_accuracy_and_hamming():
    y_true = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    y_pred = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 0]])
    m = classification_metrics(y_true, y_pred, NAMES, multi_label=True)
    assert m["accuracy"] == pytest.approx(2 / 4)  # rows 0 and 2 match exactly
    assert m["hamming_loss"] == pytest.approx(2 / 12)  # two wrong cells out of 12
    assert "confusion_matrix" not in m
    # label c: true in rows 0, 3; predicted in rows 0, 1 -> P=1/2 R=1/2
    assert m["per_class"]["c"]["precision"] == pytest.approx(0.5)
    assert m["per_class"]["c"]["recall"] == pytest.approx(0.5)
    assert m["per_class"]["a"]["f1"] == pytest.approx(1.0)
    assert m["per_class"]["c"]["support"] == 2
    # samples F1: row0 1, row1 2*1/(2+1)... P=1/2 R=1 -> 2/3, row2 1, row3 0 (nothing predicted)
    assert m["f1_samples"] == pytest.approx((1 + 2 / 3 + 1 + 0) / 4)
    # micro: tp=5, fp=1, fn=1
    assert m["f1_micro"] == pytest.approx(5 / 6)
    json.dumps(m)


def test_probabilities_add_auc_and_log_loss():
    y = np.array([0, 1, 1, 0])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])
    m = classification_metrics(y, probs.argmax(1), ["n", "p"], probs=probs)
    assert m["roc_auc_macro"] == pytest.approx(1.0)  # every positive outranks every negative
    expected = -np.mean(np.log([0.9, 0.8, 0.6, 0.7]))
    assert m["log_loss"] == pytest.approx(expected)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="differ in shape"):
        classification_metrics([0, 1], [0], NAMES)
    with pytest.raises(ValueError, match="multi-hot"):
        classification_metrics([0, 1], [0, 1], NAMES, multi_label=True)


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("loss", "min"),
        ("hamming_loss", "min"),
        ("eval_loss", "min"),
        ("accuracy", "max"),
        ("f1_macro", "max"),
    ],
)
def test_primary_metric_mode(name, mode):
    assert primary_metric_mode(name) == mode


def test_package_import_stays_light():
    code = (
        "import sys, tunelab.evaluation; "
        "print([m for m in ('torch', 'sklearn', 'matplotlib', 'transformers') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
