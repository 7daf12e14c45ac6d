"""Training diagnosis on synthetic curves with a known problem, and on a real run's log."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from tunelab.errors import DataError
from tunelab.evaluation.diagnosis.diagnose import (
    diagnose,
    diagnose_run,
    plot_diagnosis,
    read_metrics,
    run_metric,
)

DATA = Path(__file__).parent / "data"


def records(train, val=None, *, every=10, eval_every=None, lr=1e-3, extra=None):
    """metrics.jsonl-like records: train loss logged every `every` steps, validation
    records at the steps `eval_every` apart (values from `val`), with optional metrics."""
    out = []
    for i, loss in enumerate(train):
        out.append(
            {"step": (i + 1) * every, "epoch": 0.0, "split": "train", "loss": loss, "lr": lr}
        )
    for j, loss in enumerate(val or []):
        rec = {"step": (j + 1) * eval_every, "epoch": j + 1.0, "split": "validation", "loss": loss}
        rec.update((extra or [{}] * len(val))[j])
        out.append(rec)
    return sorted(out, key=lambda r: r["step"])


def kinds(diag):
    return [f["kind"] for f in diag["findings"]]


def noise(n, scale, seed=0):
    return np.random.default_rng(seed).normal(0, scale, n)


def test_clean_falling_curve_is_healthy():
    steps = np.arange(1, 101) * 10
    train = 0.3 + 0.5 * np.exp(-steps / 150) + noise(100, 0.01)
    val = [0.35 + 0.5 * math.exp(-s / 150) for s in (200, 400, 600, 800, 1000)]
    diag = diagnose(records(train.tolist(), val, eval_every=200))
    assert kinds(diag) == ["healthy"]
    assert diag["findings"][0]["severity"] == "info"
    assert diag["best_step"] == 1000
    assert diag["train_loss"]["first"] == pytest.approx(train[0])
    assert diag["validation_loss"]["min"] == pytest.approx(val[-1])
    # gap: last validation loss minus the smoothed train loss at step 1000 (about 0.30)
    assert diag["gap"] == pytest.approx(0.05, abs=0.01)
    assert diag["metric"] is None


def test_u_shaped_validation_is_overfitting_at_the_minimum():
    steps = np.arange(1, 101) * 10
    train = (0.05 + 0.6 * np.exp(-steps / 300)).tolist()  # keeps falling
    val = [0.50, 0.40, 0.36, 0.42, 0.50]  # lowest at the 3rd eval (step 600)
    diag = diagnose(records(train, val, eval_every=200))
    assert kinds(diag) == ["overfitting"]
    found = diag["findings"][0]
    assert found["severity"] == "warning" and found["step"] == 600
    assert "step 600" in found["message"]
    assert "train.early_stopping" in found["advice"] and "train.epochs" in found["advice"]
    assert diag["best_step"] == 600


def test_small_rise_or_single_late_rise_is_not_overfitting():
    train = (0.05 + 0.6 * np.exp(-np.arange(1, 101) * 10 / 300)).tolist()
    # +2% over the minimum: under the 5% margin
    assert "overfitting" not in kinds(
        diagnose(records(train, [0.5, 0.4, 0.41, 0.408], eval_every=250))
    )
    # one evaluation after the minimum: not enough
    assert "overfitting" not in kinds(diagnose(records(train, [0.5, 0.4, 0.6], eval_every=300)))


def test_nan_loss_is_divergence_at_its_step():
    train = [0.7, 0.65, 0.6, 0.58, 0.55, float("nan"), float("nan")]
    diag = diagnose(records(train))
    assert kinds(diag)[0] == "divergence"
    assert diag["findings"][0]["step"] == 60
    assert "train.lr" in diag["findings"][0]["advice"]
    assert diag["train_loss"]["last"] == pytest.approx(0.55)  # finite values only


def test_exploding_curve_is_divergence():
    steps = np.arange(1, 41)
    train = np.where(steps < 15, 0.7 - 0.01 * steps, 0.56 * np.exp((steps - 15) * 0.3)).tolist()
    diag = diagnose(records(train, lr=5e-3))
    assert "divergence" in kinds(diag)
    div = next(f for f in diag["findings"] if f["kind"] == "divergence")
    # smoothed loss passes 3 x 0.69 a little after the curve turns up at step 150
    assert 150 < div["step"] <= 250
    assert "5e-03" in div["advice"] or "0.005" in div["advice"]  # names the peak lr
    assert "healthy" not in kinds(diag)
    assert "lr_too_high" not in kinds(diag)  # a rise that keeps going is not a spike


def test_flat_slowly_falling_smooth_curve_is_lr_too_low():
    train = np.linspace(0.693, 0.680, 60) + noise(60, 0.001)
    diag = diagnose(records(train.tolist(), lr=1e-6))
    assert kinds(diag) == ["lr_too_low"]
    assert "raise train.lr" in diag["findings"][0]["advice"]
    assert "3e-06" in diag["findings"][0]["advice"]  # 3x the peak lr


def test_zero_learning_rate_is_named():
    train = [0.69] * 20
    diag = diagnose(records(train, lr=0.0))
    assert kinds(diag) == ["lr_too_low"]
    assert "stayed 0" in diag["findings"][0]["message"]


def test_noisy_flat_start_is_lr_too_high():
    base = np.full(60, 0.7)
    base[30:] = np.linspace(0.7, 0.5, 30)
    rng = np.random.default_rng(0)
    train = base * (1 + rng.choice([-0.35, 0.35], 60))  # +-35% jumps around a flat level
    diag = diagnose(records(train.tolist()))
    assert kinds(diag) == ["lr_too_high"]
    assert "jumped around" in diag["findings"][0]["message"]


def test_single_spike_is_lr_too_high_at_the_spike():
    train = list(np.linspace(0.7, 0.2, 40))
    train[25] = 0.9
    diag = diagnose(records(train))
    assert kinds(diag) == ["lr_too_high"]
    assert diag["findings"][0]["step"] == 260


def test_both_curves_still_improving_is_underfitting():
    steps = np.arange(1, 51) * 10
    train = (1.0 - 0.0015 * steps).tolist()  # 1.0 -> 0.25, straight down to the end
    val = [0.9, 0.75, 0.6, 0.45]
    diag = diagnose(records(train, val, eval_every=125))
    assert kinds(diag) == ["underfitting"]
    assert "train.epochs" in diag["findings"][0]["advice"]


def test_accuracy_at_chance_is_underfitting():
    train = list(np.linspace(0.70, 0.69, 10) + noise(10, 0.02))
    extra = [{"accuracy": 0.6, "confusion_matrix": [[60, 0], [40, 0]]}] * 2
    diag = diagnose(records(train, [0.69, 0.69], eval_every=50, extra=extra))
    assert "underfitting" in kinds(diag)
    under = next(f for f in diag["findings"] if f["kind"] == "underfitting")
    assert "0.6" in under["message"] and under["step"] == 100
    assert diag["metric"]["name"] == "accuracy"  # guessed from the records


def test_too_few_points_is_not_called_healthy():
    diag = diagnose(records([1.9], [1.92], eval_every=10))
    assert kinds(diag) == ["too_few_points"]
    assert diagnose([])["findings"][0]["kind"] == "too_few_points"
    assert diagnose([])["train_loss"] is None and diagnose([])["gap"] is None


def test_real_sst2_run_overfits_on_loss_while_f1_improves(tmp_path):
    run = tmp_path / "sst2"
    run.mkdir()
    shutil.copy(DATA / "sst2_metrics.jsonl", run / "metrics.jsonl")
    (run / "config.yaml").write_text(
        "train:\n  early_stopping:\n    enabled: true\n    metric: f1_macro\n    mode: max\n"
    )
    assert run_metric(run) == ("f1_macro", "max")
    diag = diagnose_run(run)
    assert kinds(diag) == ["overfitting"]
    over = diag["findings"][0]
    assert over["step"] == 94  # validation loss 0.398 at epoch 1, 0.568 at epoch 4
    assert "f1_macro still improved" in over["message"]
    assert diag["best_step"] == 376
    assert diag["metric"]["best"] == pytest.approx(0.8437, abs=1e-4)
    assert diag["gap"] > 0.3
    # without a config the metric is guessed (f1_macro) and the result is the same
    assert diagnose(read_metrics(run / "metrics.jsonl")) == diag

    png = plot_diagnosis(read_metrics(run), diag, tmp_path / "out" / "diagnosis.png")
    import matplotlib.image

    assert matplotlib.image.imread(png).shape[0] > 300
    assert sorted(p.name for p in png.parent.iterdir()) == ["diagnosis.png"]


def test_plot_handles_nan_and_no_lr(tmp_path):
    recs = [{"step": 10, "split": "train", "loss": float("nan")}]
    png = plot_diagnosis(recs, diagnose(recs), tmp_path / "d.png")
    assert png.stat().st_size > 1000
    assert plot_diagnosis([], diagnose([]), tmp_path / "e.png").exists()


def test_read_metrics_missing_and_bad_lines(tmp_path):
    assert read_metrics(tmp_path) == []
    good = {"step": 1, "split": "train", "loss": 0.5}
    (tmp_path / "metrics.jsonl").write_text(json.dumps(good) + "\n\n" + "NaN\n")
    with pytest.raises(DataError, match=r"metrics\.jsonl, row 3: expected a JSON object"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.jsonl").write_text(json.dumps(good) + "\n{oops\n")
    with pytest.raises(DataError, match=r"metrics\.jsonl, row 2: not valid JSON"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.jsonl").write_text(
        json.dumps(good) + '\n{"step": 2, "split": "train", "loss": NaN}\n'
    )
    recs = read_metrics(tmp_path)
    assert len(recs) == 2 and math.isnan(recs[1]["loss"])
