"""Label-free performance estimate (CBPE-style): expected accuracy and macro F1 of a window
from the served model's probabilities, calibrated on the run's validation split.

If the calibrated probability that a row's predicted label is right is c_i, the window's
accuracy is a sum of independent Bernoulli(c_i) draws over n (a Poisson-binomial), so its
expectation is mean(c_i) and its sampling variance sum c_i (1 - c_i) / n^2. The calibrator
itself was fit on V validation rows; its level is uncertain by about the sampling variance of
the validation accuracy, acc (1 - acc) / V, which is added to the interval. The estimate
stays honest only while the calibration holds: under covariate shift (same p(y|x)) it does;
under concept shift no label-free method can see the drop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054


@dataclass
class Calibrator:
    """Isotonic maps fitted on validation: `top` (top-class probability -> P(prediction is
    right)) and `per_class` (p_k -> P(true label is k), one-vs-rest)."""

    top: object
    per_class: list
    n_classes: int
    n_val: int
    reference_accuracy: float
    reference_f1: float
    reference_f1_var: float


def _isotonic(x: np.ndarray, y: np.ndarray):
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(x, y)
    return iso


def _macro_f1(pred: np.ndarray, true: np.ndarray, n_classes: int) -> np.ndarray:
    """Macro F1 of each row of `true` ((B, n) or (n,)) against `pred` (n,), averaged over
    the classes that occur as a prediction or a true label in that row."""
    true = np.atleast_2d(true)
    scores = np.zeros(len(true))
    present = np.zeros(len(true))
    for k in range(n_classes):
        p = pred == k
        t = true == k
        tp = (t & p).sum(axis=1)
        fp = (~t & p).sum(axis=1)
        fn = (t & ~p).sum(axis=1)
        denom = 2 * tp + fp + fn
        has = denom > 0
        scores += np.where(has, 2 * tp / np.maximum(denom, 1), 0.0)
        present += has
    return scores / np.maximum(present, 1)


def fit_calibrator(val_probs: np.ndarray, val_labels: np.ndarray, seed: int = 0) -> Calibrator:
    """Fit the calibration maps on the validation probabilities and true label indices."""
    probs = np.asarray(val_probs, dtype=np.float64)
    labels = np.asarray(val_labels, dtype=np.int64)
    n, c = probs.shape
    pred = probs.argmax(axis=1)
    correct = (pred == labels).astype(np.float64)
    top = _isotonic(probs.max(axis=1), correct)
    per_class = [_isotonic(probs[:, k], (labels == k).astype(np.float64)) for k in range(c)]
    f1 = float(_macro_f1(pred, labels, c)[0])
    rng = np.random.default_rng(seed)
    boot = rng.integers(0, n, size=(200, n))
    f1_boot = np.array([_macro_f1(pred[b], labels[b], c)[0] for b in boot])
    return Calibrator(
        top=top,
        per_class=per_class,
        n_classes=c,
        n_val=n,
        reference_accuracy=float(correct.mean()),
        reference_f1=f1,
        reference_f1_var=float(f1_boot.var()),
    )


def calibrated_distribution(cal: Calibrator, probs: np.ndarray) -> np.ndarray:
    """(N, C) calibrated label distribution per row: the predicted class gets the
    top-class calibrated probability, the rest of the mass is spread over the other classes
    in proportion to their one-vs-rest calibrated probabilities (raw ones when those are
    all zero)."""
    probs = np.asarray(probs, dtype=np.float64)
    n, c = probs.shape
    pred = probs.argmax(axis=1)
    top = np.clip(cal.top.predict(probs.max(axis=1)), 0.0, 1.0)
    ovr = np.column_stack([cal.per_class[k].predict(probs[:, k]) for k in range(c)])
    rows = np.arange(n)
    ovr[rows, pred] = 0.0
    raw = probs.copy()
    raw[rows, pred] = 0.0
    mass = ovr.sum(axis=1, keepdims=True)
    other = np.where(mass > 0, ovr, raw)
    mass = other.sum(axis=1, keepdims=True)
    other = np.where(mass > 0, other / np.where(mass > 0, mass, 1.0), 1.0 / max(c - 1, 1))
    other[rows, pred] = 0.0
    q = other * (1.0 - top)[:, None]
    q[rows, pred] = top
    return q


def estimate_performance(
    cal: Calibrator, probs: np.ndarray, draws: int = 200, seed: int = 0
) -> dict[str, float]:
    """Expected accuracy and macro F1 of a window with 95% intervals.

    Accuracy: mean calibrated correctness probability; interval from the Poisson-binomial
    variance plus the calibration term. Macro F1: from expected TP/FP/FN per class (as in
    NannyML's CBPE: TP_k = sum over rows predicted k of q_ik, FP_k = sum over those of
    1 - q_ik, FN_k = sum over rows not predicted k of q_ik); interval from the spread of
    macro F1 over `draws` label vectors drawn from the calibrated distribution, plus the
    validation macro F1's bootstrap variance.
    """
    probs = np.asarray(probs, dtype=np.float64)
    nan = float("nan")
    if probs.ndim != 2 or len(probs) == 0:
        return {
            "accuracy": nan,
            "accuracy_low": nan,
            "accuracy_high": nan,
            "f1_macro": nan,
            "f1_low": nan,
            "f1_high": nan,
            "reference_accuracy": cal.reference_accuracy,
        }
    n, c = probs.shape
    q = calibrated_distribution(cal, probs)
    pred = probs.argmax(axis=1)
    conf = q[np.arange(n), pred]
    acc = float(conf.mean())
    ref_acc = cal.reference_accuracy
    var = float(np.sum(conf * (1 - conf))) / n**2 + ref_acc * (1 - ref_acc) / cal.n_val
    half = Z95 * np.sqrt(var)

    f1s = []
    for k in range(c):
        is_pred = pred == k
        tp = q[is_pred, k].sum()
        fp = (1.0 - q[is_pred, k]).sum()
        fn = q[~is_pred, k].sum()
        denom = 2 * tp + fp + fn
        if denom > 1e-12:
            f1s.append(2 * tp / denom)
    f1 = float(np.mean(f1s)) if f1s else nan
    rng = np.random.default_rng(seed)
    cum = np.cumsum(q, axis=1)
    u = rng.random((draws, n, 1))
    true = np.minimum((u > cum[None, :, :]).sum(axis=2), c - 1)
    f1_draws = _macro_f1(pred, true, c)
    f1_half = Z95 * np.sqrt(float(f1_draws.var()) + cal.reference_f1_var)
    return {
        "accuracy": acc,
        "accuracy_low": max(0.0, acc - half),
        "accuracy_high": min(1.0, acc + half),
        "f1_macro": f1,
        "f1_low": max(0.0, f1 - f1_half),
        "f1_high": min(1.0, f1 + f1_half),
        "reference_accuracy": ref_acc,
    }
