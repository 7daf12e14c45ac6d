"""The no-training extractive QA baselines, measured on real SQuAD dev rows."""

from __future__ import annotations

import pytest
from conftest import SHARED_DATASETS

from tunelab.tasks.extractive_qa_baseline import (
    baseline_scores,
    lexical_overlap,
    lexical_overlap_answer,
    sentences,
)

SQUAD = SHARED_DATASETS / "squad" / "validation.jsonl"


@pytest.fixture(scope="module")
def squad_rows():
    from tunelab.tasks.extractive_qa_data import read_examples

    if not SQUAD.is_file():
        pytest.skip("../shared/datasets is not beside the repo")
    return read_examples(SQUAD)[::35]  # 302 questions across the dev set


def test_lexical_baseline_beats_the_trivial_ones_on_real_squad_rows(squad_rows):
    s = baseline_scores(squad_rows)
    assert s["lexical_overlap"]["n"] == len(squad_rows)
    assert s["lexical_overlap"]["f1"] > s["first_word"]["f1"] + 0.15
    assert s["lexical_overlap"]["exact_match"] > s["first_word"]["exact_match"] + 0.08
    assert s["lexical_overlap"]["f1"] > s["best_sentence"]["f1"]


def test_baseline_answers_are_spans_of_the_context(squad_rows):
    for a, e in zip(lexical_overlap(squad_rows[:80]), squad_rows[:80], strict=True):
        assert a["answer"] and e.context[a["start"] : a["end"]] == a["answer"]


def test_the_answer_comes_from_the_sentence_with_the_question_words_and_fits_the_wh_word():
    context = (
        "The stadium opened in 2014. Denver Broncos won Super Bowl 50 in 2016. "
        "The halftime show was headlined by Coldplay."
    )
    assert [context[a:b] for a, b in sentences(context)][1] == (
        "Denver Broncos won Super Bowl 50 in 2016."
    )
    year = lexical_overlap_answer("In what year did Denver win Super Bowl 50?", context)
    assert year["answer"] == "2016"
    who = lexical_overlap_answer("Who headlined the halftime show?", context)
    assert who["answer"] == "Coldplay"
