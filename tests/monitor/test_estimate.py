"""CBPE-style estimate: on calibrated synthetic data the interval covers the true accuracy."""

import numpy as np

from tunelab.monitor.estimate import ISOTONIC_MIN_ROWS, estimate_performance, fit_calibrator


def _calibrated(rng, n, c=3, sharp=2.0):
    logits = rng.normal(size=(n, c)) * sharp
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    cum = probs.cumsum(axis=1)
    labels = np.minimum((rng.random((n, 1)) > cum).sum(axis=1), c - 1)
    return probs, labels


def test_interval_covers_true_accuracy_most_of_the_time():
    rng = np.random.default_rng(0)
    cal = fit_calibrator(*_calibrated(rng, 1000))
    hits_acc = hits_f1 = 0
    errors = []
    for r in range(40):
        probs, labels = _calibrated(rng, 200)
        est = estimate_performance(cal, probs, seed=r)
        pred = probs.argmax(axis=1)
        acc = float(np.mean(pred == labels))
        f1 = np.mean(
            [
                2
                * np.sum((pred == k) & (labels == k))
                / max(1, np.sum(pred == k) + np.sum(labels == k))
                for k in range(3)
            ]
        )
        hits_acc += est["accuracy_low"] <= acc <= est["accuracy_high"]
        hits_f1 += est["f1_low"] <= f1 <= est["f1_high"]
        errors.append(abs(est["accuracy"] - acc))
    assert hits_acc >= 32 and hits_f1 >= 32  # nominal 95%: 38 of 40
    assert np.mean(errors) < 0.05


def test_miscalibrated_model_is_corrected():
    rng = np.random.default_rng(1)
    probs, labels = _calibrated(rng, 1500, sharp=1.0)
    over = probs**3 / (probs**3).sum(axis=1, keepdims=True)  # overconfident
    cal = fit_calibrator(over[:1000], labels[:1000])
    est = estimate_performance(cal, over[1000:])
    true = float(np.mean(over[1000:].argmax(1) == labels[1000:]))
    raw = float(over[1000:].max(axis=1).mean())
    assert abs(est["accuracy"] - true) < abs(raw - true)
    assert est["accuracy_low"] <= true <= est["accuracy_high"]
    assert est["reference_accuracy"] == float(np.mean(over[:1000].argmax(1) == labels[:1000]))


def test_empty_window_gives_nan():
    rng = np.random.default_rng(2)
    cal = fit_calibrator(*_calibrated(rng, 200))
    est = estimate_performance(cal, np.zeros((0, 3)))
    assert np.isnan(est["accuracy"]) and np.isnan(est["f1_macro"])


def _binary_with_curve(rng, n, curve):
    """Binary rows whose top-class probability x is uniform on [0.5, 1) and whose prediction
    is right with probability curve(x)."""
    top = rng.uniform(0.5, 1.0, n)
    pred = rng.integers(0, 2, n)
    probs = np.where(pred[:, None] == np.arange(2), top[:, None], 1 - top[:, None])
    right = rng.random(n) < curve(top)
    return probs, np.where(right, pred, 1 - pred)


def test_small_split_uses_temperature_and_reads_an_underconfident_model():
    # underconfident: right with probability x^2 / (x^2 + (1-x)^2) (temperature 1/2)
    rng = np.random.default_rng(3)
    curve = lambda x: x**2 / (x**2 + (1 - x) ** 2)  # noqa: E731
    cal = fit_calibrator(*_binary_with_curve(rng, 400, curve))
    assert cal.method == "temperature" and 0.35 < cal.temperature < 0.7
    probs, labels = _binary_with_curve(rng, 4000, curve)
    est = estimate_performance(cal, probs)
    true = float(np.mean(probs.argmax(1) == labels))
    assert abs(est["accuracy"] - true) < 0.02
    assert abs(float(probs.max(1).mean()) - true) > 0.05  # the raw confidence is far off


def test_large_split_takes_isotonic_when_no_temperature_fits():
    # right with probability 0.6 below x = 0.75 and 0.95 above: a step no T reproduces
    rng = np.random.default_rng(4)
    curve = lambda x: np.where(x < 0.75, 0.6, 0.95)  # noqa: E731
    probs, labels = _binary_with_curve(rng, 3 * ISOTONIC_MIN_ROWS, curve)
    cal = fit_calibrator(probs, labels)
    assert cal.method == "isotonic"
    assert cal.cv_brier["isotonic"] < cal.cv_brier["temperature"]
    new, new_labels = _binary_with_curve(rng, 2000, curve)
    low = new.max(1) < 0.75  # the rows a temperature gets wrong the most
    est = estimate_performance(cal, new[low])
    assert abs(est["accuracy"] - float(np.mean(new[low].argmax(1) == new_labels[low]))) < 0.03
