"""The monitor report: report.json holds what it was given (JSON-safe), report.html shows the
alerts, the windows, plots, the new-looking inputs' texts (escaped) and the slices."""

from __future__ import annotations

import json

import numpy as np

from tunelab.monitor.report import build_report, over_time


def _window(i: int, mmd_p: float, acc: float) -> dict:
    return {
        "window": i,
        "start": 1000.0 + i,
        "end": 1001.0 + i,
        "embedding": {
            "mmd2": 0.01,
            "mmd_p": mmd_p,
            "domain_auc": 0.5 + i / 10,
            "domain_p": 0.4,
            "newest": [f"row{i}a", f"row{i}b"],
        },
        "prediction": {
            "psi": 0.02 * i,
            "chi2": 1.0,
            "chi2_p": 0.3,
            "label_share": {"pos": 0.5 + i / 10, "neg": 0.5 - i / 10},
            "ref_label_share": {"pos": 0.5, "neg": 0.5},
            "confidence_hist": {"bins": [0.5, 0.75, 1.0], "counts": [3, 7]},
            "mean_confidence": np.float32(0.8),
        },
        "input": {
            "length_mean": 9.0,
            "length_p95": 14,
            "ref_length_mean": 9.5,
            "length_ks_p": 0.5,
            "unk_rate": 0.0,
            "ref_unk_rate": 0.0,
            "languages": {"en": 1.0},
            "ref_languages": {"en": 1.0},
        },
        "generation": None,
        "ops": {"latency_p50_ms": 3.0, "latency_p99_ms": 9.0, "error_rate": 0.0, "n": 10},
        "estimate": {
            "accuracy": acc,
            "accuracy_low": acc - 0.05,
            "accuracy_high": acc + 0.05,
            "f1_macro": acc,
            "f1_low": acc - 0.05,
            "f1_high": acc + 0.05,
            "reference_accuracy": 0.9,
            "true_accuracy": None,
        },
    }


def test_report_json_and_html(tmp_path):
    windows = [_window(0, 0.6, 0.9), _window(1, float("nan"), 0.7), _window(2, 0.001, 0.6)]
    alerts = [
        {
            "rule": "embedding-drift",
            "stat": "embedding.mmd_p",
            "op": "<",
            "value": 0.01,
            "observed": 0.001,
            "window": 2,
            "slice": None,
            "model": "clf",
            "message": "embedding.mmd_p 0.001 < 0.01",
        }
    ]
    slices = {"group": {"a": _window(0, 0.5, 0.9), "b": _window(0, 0.02, 0.8)}}
    rows = {"row2a": {"text": "<script>alert(1)</script> new words", "label": "pos"}}
    report = build_report("clf", windows, slices, alerts, tmp_path / "out", rows_by_id=rows)

    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data == report
    assert set(data) == {"model", "windows", "slices", "over_time", "alerts"}
    assert [w["embedding"]["mmd_p"] for w in data["windows"]] == [0.6, None, 0.001]  # NaN: null
    assert data["windows"][0]["prediction"]["mean_confidence"] == float(np.float32(0.8))
    assert data["over_time"]["estimate.accuracy"] == [0.9, 0.7, 0.6]
    assert data["alerts"][0]["window"] == 2 and data["slices"]["group"]["b"]["ops"]["n"] == 10

    page = (tmp_path / "out" / "report.html").read_text()
    assert "embedding.mmd_p 0.001 &lt; 0.01" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; new words" in page and "<script>alert" not in page
    assert page.count("data:image/png;base64,") >= 5  # drift, shares, PSI, accuracy, latency...
    assert "Slices" in page and "No alerts" not in page


def test_no_alerts_and_missing_sections(tmp_path):
    w = _window(0, 0.5, 0.9)
    w["prediction"] = w["estimate"] = None  # a tagger: no labels, no estimate
    report = build_report("ner", [w], {}, [], tmp_path)
    assert report["alerts"] == [] and report["over_time"]["prediction.psi"] == [None]
    page = (tmp_path / "report.html").read_text()
    assert "No alerts" in page and "Slices" not in page


def test_over_time_keeps_window_order():
    ws = [_window(i, 0.1 * (i + 1), 0.9) for i in range(4)]
    assert over_time(ws)["embedding.mmd_p"] == [0.1 * (i + 1) for i in range(4)]
