"""Balanced class weights stay bounded, and classes too rare to learn from are warned about."""

from __future__ import annotations

import numpy as np
import pytest

from tunelab.data import LabelSpace
from tunelab.data.class_weights import MAX_CLASS_WEIGHT, RARE_CLASS_ROWS, balanced_weights
from tunelab.tasks.classification import class_weights

SPACE = LabelSpace(["neg", "pos", "mixed"], False)


def test_a_single_example_class_is_warned_about_and_not_up_weighted(capsys):
    # issue 13: 'mixed' had one training row and got a balanced weight of 12.3
    y = np.repeat([0, 1, 2], [20, 16, 1])
    w = class_weights(y, SPACE, "balanced")
    assert w[2] == pytest.approx(1.0)  # not 37 / (3 * 1) = 12.3
    assert w[0] == pytest.approx(37 / 60) and w[1] == pytest.approx(37 / 48)  # still balanced
    err = capsys.readouterr().err
    assert "warning: class 'mixed' has 1 training example" in err
    assert "neg" not in err and "pos'" not in err


def test_rare_classes_are_warned_about_even_without_weights(capsys):
    class_weights(np.repeat([0, 1, 2], [20, 20, 3]), SPACE, "none")
    assert "class 'mixed' has 3 training examples" in capsys.readouterr().err
    class_weights(np.repeat([0, 1, 2], [20, 20, RARE_CLASS_ROWS]), SPACE, "none")
    assert capsys.readouterr().err == ""


def test_balanced_weights_are_capped():
    w = balanced_weights(np.array([9_990, 10]))  # 10,000 / (2 * 10) = 500 uncapped
    assert w[1] == MAX_CLASS_WEIGHT and w[0] == pytest.approx(10_000 / 19_980)
    assert balanced_weights(np.array([60, 30, 10])).tolist() == pytest.approx(
        [5 / 9, 10 / 9, 10 / 3]
    )
