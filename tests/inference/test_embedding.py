"""The log's input embeddings: the classifier's own forward pass, batch-independent, in one
shared space per hidden size."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tiny_config

from tunelab.inference.embedding import EMBED_DIM, embed_token_ids, project


@pytest.fixture(scope="module")
def trained(tiny_model, toy_data, tmp_path_factory):
    from tunelab import api
    from tunelab.methods.loading import load_trained

    out = tmp_path_factory.mktemp("emb") / "run"
    cfg = tiny_config(tiny_model, toy_data, out, train={"epochs": 1})
    api.train(cfg)
    return load_trained(out)


def test_predictions_carry_the_embedding_of_the_same_pass(trained):
    from tunelab.inference.forward import predict_texts

    texts = ["a fine film", "dull and long, far too long for anyone", "ok"]
    plain = predict_texts(trained, texts)
    rich = predict_texts(trained, texts, embed=True)
    for p, r in zip(plain, rich):
        assert r["label"] == p["label"] and r["scores"] == p["scores"]
        assert r["embedding"].shape == (EMBED_DIM,) and r["n_tokens"] >= 3
    # the same vectors whatever the batch or its padding
    alone = np.stack([predict_texts(trained, [t], embed=True)[0]["embedding"] for t in texts])
    np.testing.assert_allclose(np.stack([r["embedding"] for r in rich]), alone, atol=1e-4)
    assert not np.allclose(alone[0], alone[1])


def test_projection_is_fixed_per_hidden_size_and_keeps_distances():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 384)).astype(np.float32)
    a, b = project(x), project(x)
    np.testing.assert_array_equal(a, b)
    d_in = np.linalg.norm(x[:, None] - x[None], axis=-1)[np.triu_indices(50, 1)]
    d_out = np.linalg.norm(a[:, None] - a[None], axis=-1)[np.triu_indices(50, 1)]
    ratio = d_out / d_in  # Johnson-Lindenstrauss: about 1, spread about 1/sqrt(2 * 64)
    assert 0.9 < np.median(ratio) < 1.1
    assert np.mean((ratio > 0.6) & (ratio < 1.4)) > 0.99


def test_prompt_embeddings_need_no_forward_pass(trained):
    ids = [trained.tokenizer(t)["input_ids"] for t in ("a fine film", "a fine film", "rain")]
    vec = embed_token_ids(trained.model, ids)
    assert vec.shape == (3, EMBED_DIM)
    np.testing.assert_array_equal(vec[0], vec[1])
    assert not np.allclose(vec[0], vec[2])
