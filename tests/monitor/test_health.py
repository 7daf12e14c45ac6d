"""Input health, prediction drift, generation and ops statistics."""

import numpy as np

from tunelab.monitor import health, predictions_drift
from tunelab.monitor.generation_stats import generation_stats
from tunelab.monitor.ops import ops_stats


def test_length_and_ks():
    rng = np.random.default_rng(0)
    ref = rng.poisson(20, 2000).tolist()
    same = rng.poisson(20, 200).tolist() + [None]
    longer = rng.poisson(30, 200).tolist()
    mean, p95 = health.length_stats(same)
    assert 18 < mean < 22 and p95 >= mean
    assert health.length_ks(same, ref) > 0.01
    assert health.length_ks(longer, ref) < 1e-6


def test_unk_rate_skips_rows_without_counts():
    assert health.unk_rate([1, 0, None, 3], [10, 10, 5, None]) == 1 / 20
    assert np.isnan(health.unk_rate([], []))


def test_languages_share():
    texts = [
        "The weather is lovely today and we are going to the park.",
        "Stocks fell sharply on Monday after the central bank raised rates.",
        "Das Wetter ist heute schön und wir gehen in den Park.",
        None,
        "",
    ]
    shares = health.languages(texts)
    assert shares == {"en": 2 / 3, "de": 1 / 3}
    assert health.languages([None]) == {}


def test_psi_and_chi2():
    assert predictions_drift.psi([0.5, 0.5], [0.5, 0.5]) == 0
    assert predictions_drift.psi([0.5, 0.5], [0.9, 0.1]) > 0.25
    assert predictions_drift.chi2_test([500, 500], [100, 100])[1] > 0.5
    assert predictions_drift.chi2_test([500, 500], [180, 20])[1] < 1e-6
    assert np.isnan(predictions_drift.chi2_test([10, 0], [5, 0])[1])
    counts = predictions_drift.label_counts(["a", "b", "a", None, "zz"], ["a", "b"])
    assert counts.tolist() == [2, 1]


def test_confidence_hist():
    h = predictions_drift.confidence_hist([0.05, 0.55, 0.99, 1.0, None])
    assert len(h["bins"]) == 11 and h["bins"][0] == 0 and h["bins"][-1] == 1
    assert h["counts"][0] == 1 and h["counts"][5] == 1 and h["counts"][9] == 2


def test_generation_stats():
    outs = [
        {"finish": "stop", "prompt_tokens": 10, "completion_tokens": 5, "nll": 1.0},
        {"finish": "length", "prompt_tokens": 20, "completion_tokens": 15, "nll": 3.0},
        None,
    ]
    s = generation_stats(outs, {"prompt_tokens": [12], "nll": [1.5, 2.5]})
    assert s == {
        "prompt_tokens_mean": 15.0,
        "answer_tokens_mean": 10.0,
        "stop_rate": 0.5,
        "nll_mean": 2.0,
        "ref_nll_mean": 2.0,
    }


def test_ops_counts_errors():
    rows = [{"latency_ms": float(i), "status": 200} for i in range(1, 100)]
    rows.append({"latency_ms": 1000.0, "status": 503})
    s = ops_stats(rows)
    assert s["n"] == 100 and s["error_rate"] == 0.01
    assert 49 <= s["latency_p50_ms"] <= 52 and s["latency_p99_ms"] > 99
