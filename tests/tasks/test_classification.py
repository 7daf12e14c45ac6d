"""Classification variants end to end on the tiny model: sentence pairs, multi-label,
integer labels with names, and the class-weight rule."""

from __future__ import annotations

import random

import numpy as np
import pytest
from conftest import tiny_config, write_jsonl

from tunelab import api
from tunelab.data.labels import LabelSpace
from tunelab.tasks.classification import class_weights


def _pairs(n: int, seed: int) -> list[dict]:
    """Toy pairs whose label shows only in the second text: if pairs did not reach the
    model, it could do no better than chance."""
    rng = random.Random(seed)
    words = ["cat", "dog", "car", "tree", "boat", "lamp", "bird", "fish"]
    rows = []
    for _ in range(n):
        same = rng.random() < 0.5
        a, b = rng.sample(words, 2)
        cue = rng.choice(["indeed", "surely", "yes"] if same else ["never", "not", "no"])
        rows.append(
            {
                "premise": f"the {a} is here",
                "hypothesis": f"{cue} a {b} was seen",
                "label": int(same),
            }
        )
    return rows


def test_sentence_pairs_train_and_predict(tiny_model, tmp_path):
    data = {
        "train": write_jsonl(tmp_path / "train.jsonl", _pairs(400, 1)),
        "validation": write_jsonl(tmp_path / "dev.jsonl", _pairs(100, 2)),
    }
    cfg = tiny_config(
        tiny_model,
        data,
        tmp_path / "run",
        data={
            "text": "premise",
            "text_pair": "hypothesis",
            "label": "label",
            "label_names": ["different", "same"],
        },
        train={"epochs": 8, "lr": 3e-3},
        eval={"baselines": ["majority"]},
    )
    results = api.train(cfg)
    assert results["run"]["labels"] == ["different", "same"]
    assert (
        results["validation"]["accuracy"]
        > results["baselines"]["majority"]["validation"]["accuracy"] + 0.15
    )
    preds = api.predict(
        tmp_path / "run" / "model",
        ["the dog is here"] * 2,
        ["yes a dog was seen", "never a fish was seen"],
    )
    assert [p["label"] for p in preds] == ["same", "different"]


def test_multi_label(tiny_model, tmp_path):
    rng = random.Random(0)
    topics = {
        "sport": ["goal", "match", "team"],
        "money": ["bank", "price", "market"],
        "tech": ["chip", "code", "robot"],
    }

    def rows(n):
        out = []
        for _ in range(n):
            labels = rng.sample(sorted(topics), rng.randint(1, 2))
            words = [rng.choice(topics[t]) for t in labels for _ in range(2)] + [
                "the",
                "news",
                "today",
            ]
            rng.shuffle(words)
            out.append({"text": " ".join(words), "label": labels})
        return out

    data = {
        "train": write_jsonl(tmp_path / "t.jsonl", rows(400)),
        "validation": write_jsonl(tmp_path / "v.jsonl", rows(80)),
    }
    cfg = tiny_config(
        tiny_model,
        data,
        tmp_path / "run",
        train={"epochs": 10, "lr": 5e-3},
        eval={"baselines": ["majority"]},
    )
    results = api.train(cfg)
    assert results["run"]["labels"] == ["money", "sport", "tech"]
    # subset accuracy: every label of a row right; the majority baseline predicts none
    assert (
        results["validation"]["accuracy"]
        > 0.5
        > results["baselines"]["majority"]["validation"]["accuracy"]
    )
    pred = api.predict(tmp_path / "run" / "model", ["goal team match today"])[0]
    assert pred["labels"] == ["sport"] and set(pred["scores"]) == {"money", "sport", "tech"}


@pytest.mark.parametrize(
    ("counts", "mode", "weighted"),
    [
        ((50, 50), "auto", False),
        ((90, 10), "auto", True),
        ((50, 50), "balanced", True),
        ((90, 10), "none", False),
    ],
)
def test_class_weight_rule(counts, mode, weighted):
    y = np.repeat([0, 1], counts)
    w = class_weights(y, LabelSpace(["a", "b"], False), mode)
    assert (w is not None) == weighted
    if weighted and counts[0] != counts[1]:
        assert w[1] / w[0] == pytest.approx(counts[0] / counts[1])
