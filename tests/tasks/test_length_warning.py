"""Tokenizing uncut to measure lengths (runs/train.py: `task.featurize(train, tokenizer, None)`) or
to cut later must not print transformers' "Token indices sequence length is longer than the
specified maximum sequence length" warning: tunelab truncates everything it feeds the model.
A real too-long call afterwards still warns."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import minilm_dir

WARNING = "Token indices sequence length is longer than the specified maximum"


@pytest.fixture
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_dir())  # model_max_length 512


@pytest.fixture
def hf_log():
    """Messages of transformers' tokenizer logger (it does not propagate to caplog)."""
    logger = logging.getLogger("transformers.tokenization_utils_base")
    seen: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: seen.append(record.getMessage())
    logger.addHandler(handler)
    yield seen
    logger.removeHandler(handler)


LONG = " ".join(["word"] * 700)  # ~700 tokens, over MiniLM's 512


def _still_warns_for_real(tokenizer, hf_log) -> None:
    hf_log.clear()
    tokenizer(LONG)  # no truncation, ids meant for the model: a real problem
    assert any(WARNING in m for m in hf_log), hf_log


def test_classification_lengths_are_measured_quietly(tokenizer, hf_log):
    from tunelab.tasks.classification import TextSplit, featurize

    split = TextSplit("train", "f.jsonl", [LONG, "short"], None, np.array([0, 1]))
    lengths = featurize(split, tokenizer, None).lengths
    assert lengths[0] > 512  # measured uncut, as before
    assert not [m for m in hf_log if WARNING in m]
    cut = featurize(split, tokenizer, 128).lengths
    assert max(cut) == 128
    _still_warns_for_real(tokenizer, hf_log)


def test_token_classification_lengths_are_measured_quietly(tokenizer, hf_log):
    from tunelab.tasks.token_classification import TokenSplit, featurize

    words = LONG.split()
    split = TokenSplit("train", "f.jsonl", [words], [[0] * len(words)])
    assert featurize(split, tokenizer, None).lengths[0] > 512
    assert not [m for m in hf_log if WARNING in m]
    _still_warns_for_real(tokenizer, hf_log)


def test_mlm_documents_are_read_whole_quietly(tokenizer, hf_log):
    from tunelab.tasks.mlm import featurize
    from tunelab.tasks.mlm_data import TextChunks

    feats = featurize(TextChunks("train", "f.txt", [LONG]), tokenizer, 128)
    assert len(feats.lengths) >= 5  # one long document, cut into blocks of 128
    assert not [m for m in hf_log if WARNING in m]
    _still_warns_for_real(tokenizer, hf_log)


def test_causal_lm_and_seq2seq_encode_uncut_quietly(tokenizer, hf_log):
    from tunelab.tasks.causal_lm_data import render_text
    from tunelab.tasks.seq2seq_data import encode_sources, encode_targets

    ids, _ = render_text(LONG, tokenizer)
    assert len(ids) > 512  # fitted to max_length later (data.too_long)
    assert len(encode_sources(tokenizer, [LONG], "")[0]) > 512
    assert len(encode_targets(tokenizer, [LONG])[0]) > 512
    assert not [m for m in hf_log if WARNING in m]
    _still_warns_for_real(tokenizer, hf_log)
