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
CV_FOLDS = 5
METHODS = ("temperature", "isotonic")
ISOTONIC_MIN_ROWS = (
    1000  # below this, isotonic calibration overfits (Niculescu-Mizil & Caruana 2005)
)


@dataclass
class Calibrator:
    """The calibration fitted on validation, by `method`:

    - "temperature": one scale T on the log-probabilities, softmax(log p / T) (Guo et al.
      2017). One parameter, so it stays put on a few hundred validation rows.
    - "isotonic": `top` (top-class probability -> P(prediction is right)) and `per_class`
      (p_k -> P(true label is k), one-vs-rest), as NannyML's CBPE does. Any monotone
      miscalibration, but a step function that follows the sampling noise of a small split.

    fit_calibrator picks one by cross-validated Brier score on validation (choose_method;
    `cv_brier` keeps both scores).
    """

    method: str
    temperature: float
    top: object
    per_class: list
    n_classes: int
    n_val: int
    reference_accuracy: float
    reference_f1: float
    reference_f1_var: float
    cv_brier: dict[str, float]


def _isotonic(x: np.ndarray, y: np.ndarray):
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(x, y)
    return iso


def macro_f1(pred: np.ndarray, true: np.ndarray, n_classes: int) -> np.ndarray:
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


def _log(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(probs, 1e-12, None))


def _tempered(probs: np.ndarray, temperature: float) -> np.ndarray:
    z = _log(probs) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.05, 20] that minimises the validation NLL of softmax(log p / T)."""
    from scipy.optimize import minimize_scalar

    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        return float(-_log(_tempered(probs, float(np.exp(log_t))))[rows, labels].mean())

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def _top_correct(method: str, probs: np.ndarray, labels: np.ndarray, new: np.ndarray):
    """P(prediction is right) for the rows of `new` under `method` fitted on (probs, labels)."""
    if method == "temperature":
        return _tempered(new, fit_temperature(probs, labels)).max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    return _isotonic(probs.max(axis=1), correct).predict(new.max(axis=1))


def cv_brier(probs: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Each method's per-row squared error of P(prediction is right), CV_FOLDS-fold on
    validation (each row scored by the fold that left it out)."""
    n = len(labels)
    folds = np.random.default_rng(seed).permutation(n) % CV_FOLDS
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    errors = {m: np.zeros(n) for m in METHODS}
    for f in range(CV_FOLDS):
        tr, te = folds != f, folds == f
        if not te.any() or len(np.unique(correct[tr])) < 2:
            continue
        for m in METHODS:
            pc = _top_correct(m, probs[tr], labels[tr], probs[te])
            errors[m][te] = (pc - correct[te]) ** 2
    return errors


def choose_method(errors: dict[str, np.ndarray]) -> str:
    """Temperature on fewer than ISOTONIC_MIN_ROWS validation rows; above that, isotonic only
    when its cross-validated Brier score beats temperature's by more than one standard error
    of the per-row difference (the one-standard-error rule: the simpler model unless the
    data clearly say otherwise). On a few hundred rows isotonic's steps follow the split's
    noise, and every fold shares that noise, so cross-validation alone cannot see it: on
    the monitor benchmark's 500-row split isotonic won the CV and estimated 0.78 for a true
    0.83, temperature 0.81 (bench/results/monitor.md)."""
    diff = errors["temperature"] - errors["isotonic"]
    if len(diff) < ISOTONIC_MIN_ROWS:
        return "temperature"
    se = float(diff.std(ddof=1) / np.sqrt(len(diff)))
    return "isotonic" if float(diff.mean()) > se else "temperature"


def fit_calibrator(val_probs: np.ndarray, val_labels: np.ndarray, seed: int = 0) -> Calibrator:
    """Fit the calibration on the validation probabilities and true label indices, by the
    method choose_method picks from their cross-validated Brier scores."""
    probs = np.asarray(val_probs, dtype=np.float64)
    labels = np.asarray(val_labels, dtype=np.int64)
    n, c = probs.shape
    pred = probs.argmax(axis=1)
    correct = (pred == labels).astype(np.float64)
    errors = cv_brier(probs, labels, seed=seed)
    method = choose_method(errors)
    temperature = fit_temperature(probs, labels)
    top = _isotonic(probs.max(axis=1), correct)
    per_class = [_isotonic(probs[:, k], (labels == k).astype(np.float64)) for k in range(c)]
    f1 = float(macro_f1(pred, labels, c)[0])
    rng = np.random.default_rng(seed)
    boot = rng.integers(0, n, size=(200, n))
    f1_boot = np.array([macro_f1(pred[b], labels[b], c)[0] for b in boot])
    return Calibrator(
        method=method,
        temperature=temperature,
        top=top,
        per_class=per_class,
        n_classes=c,
        n_val=n,
        reference_accuracy=float(correct.mean()),
        reference_f1=f1,
        reference_f1_var=float(f1_boot.var()),
        cv_brier={m: float(e.mean()) for m, e in errors.items()},
    )


def calibrated_distribution(cal: Calibrator, probs: np.ndarray) -> np.ndarray:
    """(N, C) calibrated label distribution per row. Temperature: softmax(log p / T).
    Isotonic: the predicted class gets the top-class calibrated probability, the rest of the
    mass is spread over the other classes in proportion to their one-vs-rest calibrated
    probabilities (raw ones when those are all zero)."""
    probs = np.asarray(probs, dtype=np.float64)
    if cal.method == "temperature":
        return _tempered(probs, cal.temperature)
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
    f1_draws = macro_f1(pred, true, c)
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
