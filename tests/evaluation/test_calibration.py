"""Calibration (ECE/MCE per bin), the reliability diagram and the most confident mistakes."""

from __future__ import annotations

import numpy as np
import pytest

from tunelab.evaluation.report.calibration import calibration, confident_mistakes, plot_reliability


def test_calibration_hand_computed():
    conf = [0.05, 0.15, 0.95, 0.95, 1.0, 0.55]
    right = [False, False, True, False, True, True]
    cal = calibration(conf, right, bins=10)
    # bin 0: conf .05 acc 0 (gap .05); bin 1: .15 vs 0 (.15); bin 5: .55 vs 1 (.45);
    # bin 9: {.95, .95, 1.0} mean .9667 vs acc 2/3 (gap .3). ECE = (.05 + .15 + .45 + 3 * .3) / 6
    assert cal["ece"] == pytest.approx(1.55 / 6)
    assert cal["mce"] == pytest.approx(0.45)
    assert cal["n"] == 6
    bins = cal["bins"]
    assert len(bins) == 10
    assert [b["count"] for b in bins] == [1, 1, 0, 0, 0, 1, 0, 0, 0, 3]
    assert bins[9] == pytest.approx(
        {"low": 0.9, "high": 1.0, "count": 3, "confidence": 2.9 / 3, "accuracy": 2 / 3}
    )
    assert bins[2] == {"low": 0.2, "high": 0.3, "count": 0, "confidence": None, "accuracy": None}


def test_bin_edges_lower_inclusive_and_one_in_last_bin():
    cal = calibration([0.0, 0.1, 0.5, 1.0], [True, True, True, True], bins=10)
    counts = [b["count"] for b in cal["bins"]]
    assert counts == [1, 1, 0, 0, 0, 1, 0, 0, 0, 1]
    cal5 = calibration([0.2, 0.4, 0.99], [True, False, True], bins=5)
    assert [b["count"] for b in cal5["bins"]] == [0, 1, 1, 0, 1]


def test_perfectly_calibrated_model_has_small_ece_and_overconfident_large():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.5, 1.0, 20000)
    right = rng.random(20000) < conf  # right with exactly its stated probability
    assert calibration(conf, right)["ece"] < 0.02
    over = rng.random(20000) < conf - 0.2  # 20 points worse than it claims
    assert calibration(conf, over)["ece"] == pytest.approx(0.2, abs=0.02)


def test_calibration_edge_cases():
    empty = calibration([], [])
    assert empty["ece"] is None and empty["mce"] is None and empty["n"] == 0
    with pytest.raises(ValueError):
        calibration([0.5, 1.2], [True, False])
    with pytest.raises(ValueError):
        calibration([0.5, float("nan")], [True, False])
    with pytest.raises(ValueError):
        calibration([0.5], [True, False])


def test_plot_reliability_writes_a_png_for_several_models(tmp_path):
    import matplotlib.image

    rng = np.random.default_rng(1)
    conf = rng.uniform(0.3, 1.0, 500)
    good = calibration(conf, rng.random(500) < conf)
    over = calibration(conf, rng.random(500) < conf - 0.2)
    out = plot_reliability([("fine-tuned", over), ("base $model", good)], tmp_path / "rel.png")
    assert out == tmp_path / "rel.png"
    image = matplotlib.image.imread(out)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 300
    assert [p.name for p in tmp_path.iterdir()] == ["rel.png"]  # no temp file left behind
    single = plot_reliability([("only", good)], tmp_path / "one.png")
    assert matplotlib.image.imread(single).shape[0] > 300


def test_confident_mistakes_order_fields_and_k():
    names = ["neg", "neu", "pos"]
    probs = np.array(
        [
            [0.90, 0.05, 0.05],  # row 0: predicted neg, true neg -> right
            [0.10, 0.10, 0.80],  # row 1: predicted pos, true neg -> wrong, 0.80
            [0.05, 0.90, 0.05],  # row 2: predicted neu, true pos -> wrong, 0.90
            [0.40, 0.35, 0.25],  # row 3: predicted neg, true neu -> wrong, 0.40
            [0.10, 0.80, 0.10],  # row 4: predicted neu, true neg -> wrong, 0.80 (tie with 1)
        ]
    )
    texts = [f"text {i}" for i in range(5)]
    y = [0, 0, 2, 1, 0]
    out = confident_mistakes(texts, y, probs, names, k=3)
    assert [m["row"] for m in out] == [2, 1, 4]  # tie at 0.80: earlier row first
    assert out[0] == {
        "row": 2,
        "text": "text 2",
        "label": "pos",
        "predicted": "neu",
        "confidence": pytest.approx(0.9),
    }
    assert len(confident_mistakes(texts, y, probs, names)) == 4  # only 4 mistakes
    by_name = confident_mistakes(texts, ["neg", "neg", "pos", "neu", "neg"], probs, names, k=3)
    assert by_name == out
    with pytest.raises(ValueError):
        confident_mistakes(texts, y, probs[:, :2], names)
