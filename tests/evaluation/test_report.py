"""report.html and the plots: content, embedding, escaping, graceful gaps."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from tunelab.evaluation import (
    classification_metrics,
    format_results_table,
    plot_confusion_matrix,
    plot_training_curves,
    write_report,
)

NAMES = ["neg", "pos", "<script>"]


def _metrics(y_true, y_pred, loss=None):
    m = classification_metrics(np.array(y_true), np.array(y_pred), NAMES)
    if loss is not None:
        m["loss"] = loss
    return m


@pytest.fixture
def results():
    y = [0, 0, 1, 1, 2, 2, 1, 0]
    return {
        "test": _metrics(y, [0, 0, 1, 1, 2, 1, 1, 0], loss=0.31),  # acc 0.875
        "validation": _metrics(y, [0, 1, 1, 1, 2, 2, 1, 0], loss=0.35),
        "baselines": {
            "majority": {"test": _metrics(y, [0] * 8), "validation": _metrics(y, [0] * 8)},
            "tfidf_logreg": {"test": _metrics(y, [0, 0, 1, 0, 2, 1, 1, 1])},
            "linear_probe": {"validation": _metrics(y, [0, 0, 1, 1, 0, 1, 1, 0])},
        },
        "timing": {"train_seconds": 83.5, "samples_per_s": 412.7},
        "run": {
            "model": "all-minilm-l6-v2",
            "method": "lora",
            "task": "classification",
            "trainable_params": 1234,
            "total_params": 22_700_000,
            "train_rows": 3000,
        },
    }


def _records():
    recs = []
    for step in range(10, 210, 10):
        recs.append(
            {
                "step": step,
                "epoch": step / 100,
                "split": "train",
                "loss": 1.0 / step**0.3,
                "lr": 5e-4 * (1 - step / 200),
                "samples_per_s": 120.0,
            }
        )
        if step % 100 == 0:
            recs.append(
                {
                    "step": step,
                    "epoch": step / 100,
                    "split": "validation",
                    "loss": 0.4,
                    "accuracy": 0.8 + step / 2000,
                    "f1_macro": 0.79,
                }
            )
    return recs


def test_write_report_contents(tmp_path, results):
    path = write_report(tmp_path / "run", results, _records(), title="SST-2 <demo>")
    assert path == tmp_path / "run" / "report.html"
    text = path.read_text(encoding="utf-8")
    assert "<script>" not in text and "&lt;script&gt;" in text  # label name escaped
    assert "SST-2 &lt;demo&gt;" in text
    assert "all-minilm-l6-v2" in text and "lora" in text and "3,000" in text
    assert "1m 23.5s" in text  # train_seconds formatted
    # fine-tuned test accuracy 0.875 is the best of the test rows -> bold
    assert "<b>0.8750</b>" in text
    assert f"{results['baselines']['majority']['test']['accuracy']:.4f}" in text
    assert "<td>loss</td><td>0.3100</td><td>0.3500</td>" in text  # all-metrics table, both splits
    assert "TF-IDF + logistic regression" in text and "linear probe" in text
    # two embedded PNGs (confusion matrix + curves), both real PNGs
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(uris) == 2
    assert all(base64.b64decode(u)[:8] == b"\x89PNG\r\n\x1a\n" for u in uris)
    assert "http://" not in text and "https://" not in text  # self-contained
    assert not [p for p in (tmp_path / "run").iterdir() if p.name != "report.html"]  # no temp left


def test_write_report_handles_missing_parts(tmp_path):
    path = write_report(tmp_path, {}, [], title="empty")
    text = path.read_text()
    assert "no evaluation metrics" in text and "data:image/png" not in text
    only_val = {"validation": _metrics([0, 1, 2], [0, 1, 1]), "baselines": {"majority": {}}}
    text = write_report(tmp_path, only_val, [], title="val only").read_text()
    assert "Per class (validation)" in text and text.count("data:image/png;base64,") == 1


def test_report_shows_a_baselines_note(tmp_path):
    """base_few_shot with no room for an example: no row in the table, the note says why."""
    note = "test: no training example fits in front of any of its 16 rows within 64 <tokens>"
    results = {
        "test": {"loss": 2.1},
        "baselines": {"base_model": {"test": {"loss": 3.0}}, "base_few_shot": {"note": note}},
    }
    text = write_report(tmp_path, results, [], title="chat").read_text()
    assert "<b>base_few_shot</b>: test: no training example fits" in text
    assert "within 64 &lt;tokens&gt;" in text  # escaped


def test_confusion_matrix_png_opens(tmp_path):
    mpimg = pytest.importorskip("matplotlib.image")
    for k in (2, 30):
        cm = np.random.default_rng(k).integers(0, 50, size=(k, k)).tolist()
        names = [f"class ${i} with a rather long name" for i in range(k)]
        path = plot_confusion_matrix(cm, names, tmp_path / "figs" / f"cm{k}.png", title="test")
        img = mpimg.imread(path)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    with pytest.raises(ValueError):
        plot_confusion_matrix([[1, 2], [3, 4]], ["a", "b", "c"], tmp_path / "bad.png")
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["cm2.png", "cm30.png"]


def test_training_curves(tmp_path):
    mpimg = pytest.importorskip("matplotlib.image")
    assert plot_training_curves([], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
    path = plot_training_curves(_records(), tmp_path / "curves.png")
    assert mpimg.imread(path).shape[1] > 500
    # validation-only records still plot
    assert plot_training_curves(_records()[-1:], tmp_path / "v.png") is not None


def test_format_results_table(results):
    table = format_results_table(results)
    lines = table.splitlines()
    assert lines[0] == "test"
    assert lines[1].split() == ["model", "accuracy", "f1_macro", "f1_weighted"]
    rows = [line.split() for line in lines[3:]]
    assert [r[0] for r in rows] == [
        "fine-tuned",
        "majority",
        "tfidf_logreg",
    ]  # no linear_probe test
    t = results["test"]
    assert rows[0][1:] == [
        f"{t['accuracy']:.4f}",
        f"{t['f1_macro']:.4f}",
        f"{t['f1_weighted']:.4f}",
    ]
    val_rows = [
        line.split()[0] for line in format_results_table(results, "validation").splitlines()[3:]
    ]
    assert val_rows == ["fine-tuned", "majority", "linear_probe"]
    assert format_results_table({}, "test") == "no test metrics"
