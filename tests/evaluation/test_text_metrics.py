"""Text metrics against hand-computed values: SQuAD normalization/EM/F1 (the official script's
examples), BLEU/chrF of identical and disjoint texts, ROUGE overlaps worked out by hand, and
the best-of-several-references rule."""

from __future__ import annotations

import pytest

from tunelab.metrics import text as tm


def test_squad_normalization():
    assert tm.normalize_answer("The  Cat, sat!") == "cat sat"
    assert tm.normalize_answer("an apple a day") == "apple day"
    assert tm.normalize_answer("Theatre") == "theatre"  # articles only as whole words
    assert tm.normalize_answer("  ") == ""


def test_exact_match_and_token_f1_by_hand():
    assert tm.exact_match_score("the Denver Broncos", "Denver Broncos") == 1.0
    assert tm.exact_match_score("Denver", "Denver Broncos") == 0.0
    # pred {denver, broncos, won}, gold {denver, broncos}: P = 2/3, R = 1, F1 = 0.8
    assert tm.token_f1_score("Denver Broncos won", "the Denver Broncos") == pytest.approx(0.8)
    # tokens form a bag: "cat cat" vs "cat" shares one: P = 1/2, R = 1, F1 = 2/3
    assert tm.token_f1_score("cat cat", "cat") == pytest.approx(2 / 3)
    assert tm.token_f1_score("dog", "cat") == 0.0
    assert tm.token_f1_score("the", "a") == 1.0  # both normalize to nothing
    assert tm.token_f1_score("the", "cat") == 0.0


def test_best_reference_per_row_then_average():
    preds = ["Denver Broncos", "blue"]
    refs = [["Carolina Panthers", "the Denver Broncos"], ["red"]]
    assert tm.exact_match(preds, refs) == pytest.approx(50.0)
    assert tm.token_f1(preds, refs) == pytest.approx(50.0)


def test_bleu_and_chrf_identical_disjoint_and_multi_reference():
    text = ["the cat sat on the mat today", "a dog ran in the park"]
    assert tm.bleu(text, [[t] for t in text]) == pytest.approx(100.0)
    assert tm.chrf(text, [[t] for t in text]) == pytest.approx(100.0)
    assert tm.bleu(["xyz qqq www vvv"], [["the cat sat on"]]) == pytest.approx(0.0)
    # a second reference that matches exactly lifts BLEU to 100; rows may differ in count
    refs = [["something else entirely here", text[0]], [text[1]]]
    assert tm.bleu(text, refs) == pytest.approx(100.0)


def test_rouge_by_hand():
    # pred "the cat sat", ref "the cat ran": unigrams 2/3 both ways -> F 2/3;
    # bigrams {the cat, cat sat} vs {the cat, cat ran}: 1/2 -> F 1/2; LCS "the cat" -> 2/3
    r = tm.rouge(["the cat sat"], [["the cat ran"]])
    assert r["rouge1"] == pytest.approx(100 * 2 / 3)
    assert r["rouge2"] == pytest.approx(50.0)
    assert r["rougeL"] == pytest.approx(100 * 2 / 3)
    # the better reference counts
    r = tm.rouge(["the cat sat"], [["dogs bark", "the cat sat"]])
    assert r == pytest.approx({"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0})


def test_text_metrics_flat_and_checked():
    out = tm.text_metrics(["a b"], [["a b"]])
    assert set(out) == {"bleu", "chrf", "rouge1", "rouge2", "rougeL", "exact_match", "token_f1"}
    assert all(isinstance(v, float) for v in out.values())
    assert tm.text_metrics([], [])["bleu"] == 0.0
    with pytest.raises(ValueError, match="pair up"):
        tm.bleu(["a"], [])
    with pytest.raises(ValueError, match="no reference"):
        tm.rouge(["a"], [[]])
