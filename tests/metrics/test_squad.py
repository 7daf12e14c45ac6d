"""SQuAD v1.1 EM/F1: hand-computed cases and the official script's known quirks."""

from __future__ import annotations

import json

import pytest

from tunelab.metrics.squad import (
    best_over_golds,
    evaluate_squad_file,
    exact_match_score,
    f1_score,
    normalize_answer,
    squad_metrics,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The Denver Broncos", "denver broncos"),
        ("  a  cat,  an   Owl! ", "cat owl"),
        ("theory of the atom", "theory of atom"),  # "the" only as a whole word
        ("U.S.", "us"),  # punctuation is deleted, not replaced by a space
        ("Denver-Broncos", "denverbroncos"),
        ("the", ""),
        ("24–10", "24–10"),  # en dash is not ASCII punctuation: kept
        ("‘Super Bowl’", "‘super bowl’"),  # curly quotes kept too
        ("THE END", "end"),  # lowercased before articles are removed
        ("a.the", "athe"),  # punctuation removed first, so "a.the" is one word
    ],
)
def test_normalize_answer_follows_the_official_order(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match_ignores_case_articles_punctuation_and_spacing():
    assert exact_match_score("the  Denver Broncos.", "Denver Broncos") == 1.0
    assert exact_match_score("Denver", "Denver Broncos") == 0.0
    assert exact_match_score("24–10", "24-10") == 0.0  # different dashes differ


def test_f1_hand_computed():
    # pred tokens: denver broncos won; gold: denver broncos -> P 2/3, R 1, F1 0.8
    assert f1_score("Denver Broncos won", "The Denver Broncos") == pytest.approx(0.8)
    # bag overlap: a repeated token matches at most as often as the other side has it
    # pred: x x y (3), gold: x y y z (4), common: x1 y1 = 2 -> P 2/3, R 1/2, F1 4/7
    assert f1_score("x x y", "x y y z") == pytest.approx(4 / 7)
    assert f1_score("Carolina", "Denver Broncos") == 0.0


def test_f1_of_empty_normalised_strings_is_zero_in_v1_1():
    # the v1.1 script returns 0 when no token is shared, even for two empty answers; EM is 1
    assert f1_score("the", "a") == 0.0
    assert exact_match_score("the", "a") == 1.0


def test_best_over_gold_answers_per_metric():
    golds = ["Denver Broncos", "the Broncos", "Broncos"]
    assert best_over_golds(exact_match_score, "Broncos", golds) == 1.0
    assert best_over_golds(f1_score, "Denver", golds) == pytest.approx(2 * 0.5 / 1.5)
    with pytest.raises(ValueError):
        best_over_golds(f1_score, "x", [])


def test_corpus_averages_on_a_0_to_1_scale():
    preds = ["Denver Broncos", "Denver", None, "Santa Clara"]
    golds = [["Denver Broncos"], ["Denver Broncos"], ["February 7, 2016"], ["Levi's Stadium"]]
    out = squad_metrics(preds, golds)
    assert out["n"] == 4
    assert out["exact_match"] == pytest.approx(1 / 4)
    assert out["f1"] == pytest.approx((1 + 2 / 3 + 0 + 0) / 4)  # None: unanswered, 0
    assert squad_metrics([], []) == {"exact_match": 0.0, "f1": 0.0, "n": 0}
    with pytest.raises(ValueError, match="pair up"):
        squad_metrics(["x"], [])


def test_official_file_evaluation_counts_missing_predictions(tmp_path):
    dataset = {
        "version": "1.1",
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": "Denver Broncos beat Carolina Panthers.",
                        "qas": [
                            {
                                "id": "q1",
                                "question": "Who won?",
                                "answers": [
                                    {"text": "Denver Broncos", "answer_start": 0},
                                    {"text": "Broncos", "answer_start": 7},
                                ],
                            },
                            {
                                "id": "q2",
                                "question": "Who lost?",
                                "answers": [
                                    {"text": "Carolina Panthers", "answer_start": 20},
                                ],
                            },
                        ],
                    }
                ],
            }
        ],
    }
    out = evaluate_squad_file(dataset, {"q1": "the Broncos"})
    assert out == {"exact_match": 0.5, "f1": 0.5, "n": 2, "missing": 1}
    assert evaluate_squad_file(dataset["data"], {"q1": "x", "q2": "Panthers"})["f1"] == (
        pytest.approx((0 + 2 / 3) / 2)
    )


def test_gold_answers_score_perfectly_on_the_real_dev_file():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2].parent / "shared/datasets/squad/dev-v1.1.json"
    if not path.is_file():
        pytest.skip("../shared/datasets is not beside the repo")
    dataset = json.loads(path.read_text())
    first = {
        qa["id"]: qa["answers"][0]["text"]
        for a in dataset["data"]
        for p in a["paragraphs"]
        for qa in p["qas"]
    }
    out = evaluate_squad_file(dataset, first)
    assert out["n"] == 10570 and out["missing"] == 0
    assert out["exact_match"] == 1.0 and out["f1"] == 1.0
