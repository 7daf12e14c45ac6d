"""Length-grouped batches: every row once per epoch, deterministic in (seed, epoch), and far
less padding than random batches."""

import numpy as np

from tunelab.data.batching import Features, batch_order, collate, sorted_batches


def _padding(lengths: np.ndarray, batches) -> float:
    padded = sum(len(b) * lengths[b].max() for b in batches)
    return 1 - lengths.sum() / padded


def test_each_row_once_and_deterministic():
    lengths = np.random.default_rng(0).integers(2, 60, size=1000)
    a = batch_order(lengths, 32, seed=3, epoch=1)
    assert sorted(np.concatenate(a).tolist()) == list(range(1000))
    assert all(np.array_equal(x, y) for x, y in zip(a, batch_order(lengths, 32, seed=3, epoch=1)))
    other = batch_order(lengths, 32, seed=3, epoch=2)
    assert not all(np.array_equal(x, y) for x, y in zip(a, other))


def test_grouping_cuts_padding():
    lengths = np.random.default_rng(1).lognormal(2.5, 0.6, size=4000).astype(int) + 2
    grouped = _padding(lengths, batch_order(lengths, 32, seed=0, epoch=0, group_by_length=True))
    random_ = _padding(lengths, batch_order(lengths, 32, seed=0, epoch=0, group_by_length=False))
    assert random_ > 0.4 and grouped < random_ / 3


def test_collate_pads_to_the_longest_row_of_the_batch():
    feats = Features(
        {"input_ids": [[5, 6, 7], [8], [9, 10]], "attention_mask": [[1, 1, 1], [1], [1, 1]]},
        np.array([0, 1, 0]),
    )
    batch = collate(feats, np.array([1, 2]), pad_id=0)
    assert batch["input_ids"].tolist() == [[8, 0], [9, 10]]
    assert batch["attention_mask"].tolist() == [[1, 0], [1, 1]]
    assert batch["labels"].tolist() == [1, 0]
    assert [len(b) for b in sorted_batches(np.array([1, 5, 3]), 2)] == [2, 1]
