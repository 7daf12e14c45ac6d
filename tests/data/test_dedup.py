"""Exact and near-duplicate detection, and the conflicting-label policies."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from conftest import SHARED_DATASETS

from tunelab.data.dedup import (
    dedup_key,
    exact_groups,
    lsh_params,
    minhash_signatures,
    near_groups,
    resolve_duplicates,
)

SST2 = SHARED_DATASETS / "sst2" / "train.jsonl"
needs_sst2 = pytest.mark.skipif(not SST2.exists(), reason="needs ../shared/datasets/sst2")


def shingles(text: str) -> set:
    """The shingle set near_groups works on, computed exactly (no hashing)."""
    words = dedup_key(text).split()
    return (
        set(words) if len(words) < 3 else {tuple(words[i : i + 3]) for i in range(len(words) - 2)}
    )


def jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def test_dedup_key_normalizes_case_punctuation_space_and_unicode():
    assert dedup_key("  Hello,   WORLD!! ") == "hello world"
    assert dedup_key("Ｈｅｌｌｏ world") == "hello world"  # NFKC folds full-width letters
    assert dedup_key("STRASSE café") == dedup_key("straße, Café.")  # casefold, not lower
    assert dedup_key("a_b\tc\x1fd") == "ab c d"  # underscore is punctuation; \x1f is space
    assert dedup_key("...!") == ""


def test_exact_groups_planted():
    texts = [
        "Hello, world!",
        "a great movie",
        "hello world",
        "Goodbye world",
        "  HELLO   world ",
        "A great movie.",
        "hello worlds",
        "Ｈｅｌｌｏ world",
        "unique text",
    ]
    assert exact_groups(texts) == [[0, 2, 4, 7], [1, 5]]
    assert exact_groups(["one", "two", "three"]) == []


def test_near_groups_small_cases():
    texts = [
        "the cat sat on the mat today",
        "The cat sat on the mat, today!",  # exact duplicate after normalizing
        "great movie",
        "movie great",  # under 3 words: compared as word sets
        "great",
        "a completely different sentence about stock markets",
        "",
        "!!!",  # no words, like the empty text
    ]
    assert near_groups(texts) == [[0, 1], [2, 3], [6, 7]]
    assert near_groups(["only one"]) == [] and near_groups([]) == []
    # nothing near-duplicate: no groups at all (it was [[]], one empty group)
    assert near_groups(["the cat sat on the mat", "stock markets fell sharply today"]) == []
    with pytest.raises(ValueError, match="threshold"):
        near_groups(texts, threshold=0)


def test_lsh_params_match_datasketch():
    lsh = pytest.importorskip("datasketch.lsh")
    for threshold in (0.5, 0.8, 0.9):
        for weight in (0.5, 0.95):
            ours = lsh_params(threshold, 128, weight)
            assert ours == lsh._optimal_param(threshold, 128, 1 - weight, weight)
    assert lsh_params(0.8, 128, 0.5) == (9, 13)


def test_minhash_estimates_jaccard_without_bias():
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(400)]
    pairs = []
    for _ in range(300):
        words = rng.choices(vocab, k=40)
        cut = rng.randint(0, 20)
        pairs.append((" ".join(words), " ".join(words[cut:])))
    sig = minhash_signatures([t for p in pairs for t in p], num_perm=128, seed=3)
    est = (sig[0::2] == sig[1::2]).mean(axis=1)
    true = np.array([jaccard(a, b) for a, b in pairs])
    z = (est - true) / np.sqrt(np.maximum(true * (1 - true), 1e-3) / 128)
    assert abs((est - true).mean()) < 0.01 and 0.7 < z.std() < 1.3
    assert not np.array_equal(sig, minhash_signatures([t for p in pairs for t in p], seed=4))


def plant_near_duplicates(texts: list[str], k: int, seed: int) -> list[tuple[int, int]]:
    """Append k near-copies to `texts`; return (original, copy) position pairs.

    A copy appends one word to a row of >= 10 words, or replaces the first or last word
    of a row of >= 20 words. Both keep the word 3-gram Jaccard >= 0.88; a word changed in
    the middle of a 10-word row would touch 3 of its 8 shingles (Jaccard 0.45), which is
    not a near-duplicate at threshold 0.8.
    """
    rng = random.Random(seed)
    words_of = [dedup_key(t).split() for t in texts]
    vocab = sorted({w for words in words_of for w in words})
    long10 = [i for i, words in enumerate(words_of) if len(words) >= 10]
    long20 = [i for i, words in enumerate(words_of) if len(words) >= 20]
    pairs = []
    for j in range(k):
        src = rng.choice(long10 if j % 2 else long20)
        words = list(words_of[src])
        new = rng.choice([w for w in vocab[:500] if w not in words])
        if j % 2:
            words.append(new)
        else:
            words[rng.choice([0, -1])] = new
        texts.append(" ".join(words))
        pairs.append((src, len(texts) - 1))
    return pairs


@needs_sst2
def test_near_groups_on_real_rows_with_planted_copies():
    with SST2.open(encoding="utf-8") as f:
        rows = [json.loads(line)["sentence"] for line in f]
    texts = random.Random(0).sample(rows, 3000)
    planted = plant_near_duplicates(texts, 100, seed=1)
    assert min(jaccard(texts[a], texts[b]) for a, b in planted) >= 0.88

    groups = near_groups(texts, threshold=0.8, num_perm=128, seed=0)
    group_of = {i: g for g, members in enumerate(groups) for i in members}
    found = sum(a in group_of and group_of[a] == group_of.get(b) for a, b in planted)
    assert found / len(planted) >= 0.95

    # precision: every member of a group is a verified near-duplicate of another member
    for members in groups:
        for i in members:
            best = max(jaccard(texts[i], texts[j]) for j in members if j != i)
            assert best >= 0.8 - 0.1, (texts[i], [texts[j] for j in members])
    unrelated = next(
        (i, j) for i in range(50) for j in range(50, 100) if jaccard(texts[i], texts[j]) == 0
    )
    assert group_of.get(unrelated[0], -1) != group_of.get(unrelated[1], -2)
    assert near_groups(texts, seed=0) == groups  # deterministic


def test_resolve_duplicates_policies():
    groups = [[0, 3, 5], [1, 4], [2, 6, 7, 8]]
    labels = ["a", "a", "b", "a", "b", "a", "a", "a", "c"]
    # group 0 agrees; group 1 is a 1-1 tie; group 2 is b, a, a, c: majority a
    drop, stats = resolve_duplicates(groups, labels, "majority")
    assert drop == [1, 2, 3, 4, 5, 7, 8]  # keeps 0, and 6 (the first "a" of group 2)
    assert stats == {
        "groups": 3,
        "rows_dropped": 7,
        "conflicting_groups": 2,
        "conflict_rows_dropped": 5,
    }
    drop, stats = resolve_duplicates(groups, labels, "drop")
    assert drop == [1, 2, 3, 4, 5, 6, 7, 8]
    assert stats["conflicting_groups"] == 2 and stats["conflict_rows_dropped"] == 6

    drop, stats = resolve_duplicates(groups, None)  # no labels: keep the first of each
    assert drop == [3, 4, 5, 6, 7, 8] and stats["conflicting_groups"] == 0
    with pytest.raises(ValueError, match="policy"):
        resolve_duplicates(groups, labels, "first")


def test_resolve_duplicates_multi_label_compares_sets():
    labels = [["x", "y"], ["y", "x"], ["x"], np.array([1, 0, 1]), np.array([1, 0, 1])]
    drop, stats = resolve_duplicates([[0, 1], [3, 4]], labels, "drop")
    assert drop == [1, 4] and stats["conflicting_groups"] == 0
    multi_hot = np.array([[1, 0], [0, 1]])  # (N, C): position is the label
    assert resolve_duplicates([[0, 1]], multi_hot, "drop")[0] == [0, 1]
    drop, stats = resolve_duplicates([[0, 1, 2]], labels, "majority")
    assert drop == [1, 2] and stats["conflict_rows_dropped"] == 2  # all dropped from it
