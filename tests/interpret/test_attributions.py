"""Attribution methods against hand computations on tiny models: IG completeness, gradient x
input, occlusion, a planted decisive word, and generated-span attribution of a causal LM."""

from __future__ import annotations

import interpret_fixtures
import pytest
import torch

from tunelab.interpret import attributions as A
from tunelab.interpret.loading import load_subject
from tunelab.interpret.targets import prepare_causal, prepare_classification

trained_cls = interpret_fixtures.trained_cls  # the shared session fixture


def _log_odds_direct(model, ids, extra, target):
    """The explained score recomputed from the model's own forward pass (not our code)."""
    with torch.no_grad():
        z = model(input_ids=ids, **extra).logits[0].double()  # (C,)
    others = torch.cat([z[:target], z[target + 1 :]])
    return float(z[target] - torch.logsumexp(others, 0))


def test_ig_completeness(trained_cls):
    s = load_subject(trained_cls)
    prep = prepare_classification(s, "the plot was really wonderful and fun", None, None)
    target = s.labels.names.index(prep.decision)
    inp, base_id = prep.inp, A.baseline_token_id(s.tokenizer)
    attr, delta = A.integrated_gradients(s.model, inp, A.class_score(target), base_id, steps=100)
    f_x = _log_odds_direct(s.model, inp.input_ids, inp.extra, target)
    f_b = _log_odds_direct(s.model, A.baseline_ids(inp, base_id), inp.extra, target)
    assert abs(f_x - f_b) > 0.5  # the test means something: the score really moves
    assert float(attr.sum()) == pytest.approx(f_x - f_b, abs=0.01 * abs(f_x - f_b))
    assert abs(float(delta[0])) < 0.01 * abs(f_x - f_b)
    # special tokens keep their own embedding in the baseline: exactly no attribution
    assert attr[0] == 0 and attr[-1] == 0


def test_baseline_is_mask_for_bert(trained_cls):
    s = load_subject(trained_cls)
    assert A.baseline_token_id(s.tokenizer) == s.tokenizer.mask_token_id
    assert A.baseline_token_id(s.tokenizer, "pad") == s.tokenizer.pad_token_id


def test_grad_x_input_matches_hand_computation(trained_cls):
    s = load_subject(trained_cls)
    prep = prepare_classification(s, "a dull film", None, "positive")
    inp = prep.inp
    emb = s.model.get_input_embeddings()(inp.input_ids).detach().requires_grad_(True)  # (1,T,D)
    z = s.model(inputs_embeds=emb, **inp.extra).logits  # BERT adds positions/types itself
    score = torch.log_softmax(z, -1)[0, 1] - torch.log_softmax(z, -1)[0, 0]  # binary log-odds
    (grad,) = torch.autograd.grad(score, emb)
    hand = (emb * grad).sum(-1)[0] * inp.attributable.float()  # (T,)
    ours = A.grad_x_input(s.model, inp, A.class_score(1))
    assert torch.allclose(ours, hand.detach(), atol=1e-5)


def test_occlusion_is_score_drop(trained_cls):
    s = load_subject(trained_cls)
    prep = prepare_classification(s, "the actors were awful", None, None)
    inp, base_id = prep.inp, A.baseline_token_id(s.tokenizer)
    target = s.labels.names.index(prep.decision)
    ours = A.occlusion(s.model, inp, A.class_score(target), base_id)
    full = _log_odds_direct(s.model, inp.input_ids, inp.extra, target)
    for i in range(inp.length):
        if not inp.attributable[i]:
            assert ours[i] == 0
            continue
        ids = inp.input_ids.clone()
        ids[0, i] = base_id
        drop = full - _log_odds_direct(s.model, ids, inp.extra, target)
        assert float(ours[i]) == pytest.approx(drop, abs=1e-4)


@pytest.mark.parametrize("method", ["ig", "grad_x_input", "occlusion"])
def test_planted_word_gets_top_attribution(trained_cls, method):
    """Toy labels are decided by sentiment words among filler: the positive word must rank
    first. (Negative rows are not asserted: a tiny model may call "negative" whenever no
    positive word is present, and then the negative word honestly matters little.)"""
    from tunelab.interpret.explain import explain

    texts = [
        "the movie was really superb",
        "the actors were charming",
        "a very wonderful story",
        "the plot is quite excellent",
    ]
    planted = ["superb", "charming", "wonderful", "excellent"]
    rep = explain(trained_cls, texts, methods=(method,), ig_steps=30)
    for t, word in zip(rep["texts"], planted):
        unit = t["units"][0]
        assert unit["name"] == "positive"
        assert unit["top"][method][0][0] == word
        assert unit["top"][method][0][1] > 0  # it pushes toward the predicted class


def test_span_attribution_shapes_and_completeness(tiny_llama):
    s = load_subject(tiny_llama)
    assert s.task == "causal-lm"
    prep = prepare_causal(s, "Name a fruit.", None, max_new_tokens=4)
    unit = prep.units[0]
    g, p = len(unit.info["span_tokens"]), len(prep.tokens)
    assert 1 <= g <= 4 and prep.inp.length == p + g
    base_id = A.baseline_token_id(s.tokenizer)
    per, delta = A.integrated_gradients(
        s.model, prep.inp, unit.per_token, base_id, steps=64, outputs=g
    )
    assert per.shape == (g, p + g) and bool((per[:, p:] == 0).all())  # span held fixed
    with torch.no_grad():  # per generated token: log p(span_j | prefix), recomputed directly

        def lp(ids):
            logp = torch.log_softmax(s.model(input_ids=ids).logits[0].double(), -1)
            span = prep.inp.input_ids[0, p:]
            return logp[p - 1 : p - 1 + g].gather(-1, span[:, None])[:, 0]  # (G,)

        diff = lp(prep.inp.input_ids) - lp(A.baseline_ids(prep.inp, base_id))
    assert torch.allclose(per.sum(1).double(), diff, atol=2e-3 + 0.01 * float(diff.abs().max()))
    # linearity: the span's IG is the sum of the per-token rows
    total, _ = A.integrated_gradients(s.model, prep.inp, unit.score, base_id, steps=64)
    assert torch.allclose(total, per.sum(0), atol=1e-4)
    assert float(total.sum()) == pytest.approx(
        float(diff.sum()), abs=2e-3 + 0.01 * abs(float(diff.sum()))
    )
