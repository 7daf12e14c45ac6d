"""Attention maps, rollout, PNG grid and the interactive HTML page (tiny BERT and tiny Llama)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tunelab.errors import TunelabError
from tunelab.interpret.attention import (
    attention_maps,
    attention_rollout,
    maps_summary,
)
from tunelab.interpret.attention_files import write_attention
from tunelab.interpret.attention_html import attention_html, decode_attentions
from tunelab.interpret.attention_plots import (
    attention_grid_figure,
    grid_mosaic,
    plot_attention_grid,
    plot_rollout,
)


@pytest.fixture(scope="module")
def bert(tiny_model):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2)
    return model, AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture(scope="module")
def bert_maps(bert):
    model, tok = bert
    return attention_maps(model, tok, "a gripping, beautifully shot film")


def small_maps(tokens: list[str], layers: int = 2, heads: int = 2, seed: int = 0) -> dict:
    """Row-stochastic random maps with the given token strings (no model needed)."""
    rng = np.random.default_rng(seed)
    att = rng.random((layers, heads, len(tokens), len(tokens))).astype(np.float32)
    att /= att.sum(-1, keepdims=True)
    return {"tokens": tokens, "attentions": att, "rollout": attention_rollout(att), "model": "X"}


def test_bert_maps_shapes_rows_and_special_tokens(bert, bert_maps):
    model, tok = bert
    tokens = bert_maps["tokens"]
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"  # the tokenizer's own specials
    assert bert_maps["special"][0] and bert_maps["special"][-1] and not bert_maps["special"][1]
    att = bert_maps["attentions"]
    assert att.dtype == np.float32
    assert att.shape == (2, 2, len(tokens), len(tokens))  # (layers, heads, T, T)
    np.testing.assert_allclose(att.sum(-1), 1.0, atol=1e-5)
    assert not bert_maps["causal"] and np.triu(att, 1).max() > 0.01  # encoders see both ways
    np.testing.assert_allclose(bert_maps["rollout"], attention_rollout(att), atol=1e-6)
    np.testing.assert_allclose(bert_maps["rollout"].sum(-1), 1.0, atol=1e-5)
    # switched to eager for the call only, and left in eval/train mode as it was
    assert model.config._attn_implementation == "sdpa"


def test_sentence_pair_and_truncation(bert):
    model, tok = bert
    maps = attention_maps(model, tok, "the film", "was great", max_length=128)
    assert maps["tokens"].count("[SEP]") == 2
    short = attention_maps(model, tok, "one two three four five six seven", max_length=5)
    assert short["attentions"].shape[-1] == 5 and short["tokens"][-1] == "[SEP]"


def test_restores_training_mode_and_refuses_empty_text(bert):
    model, tok = bert
    model.train()
    attention_maps(model, tok, "good film")
    assert model.training
    model.eval()
    with pytest.raises(TunelabError, match="empty"):
        attention_maps(model, tok, "   ")


def test_causal_lm_is_lower_triangular_and_peft_wrapped_works(tiny_llama):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    before = model.config._attn_implementation
    maps = attention_maps(model, tok, "What is the capital of France?")
    att = maps["attentions"]
    n = len(maps["tokens"])
    assert att.shape == (2, 2, n, n) and maps["causal"]
    assert np.triu(att, 1).max() == 0.0  # a token never attends to later ones
    np.testing.assert_allclose(att.sum(-1), 1.0, atol=1e-5)
    assert np.triu(maps["rollout"], 1).max() == 0.0
    assert model.config._attn_implementation == before
    assert "France" in "".join(maps["labels"])  # byte-level 'ĠFrance' shown readable
    wrapped = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    peft_maps = attention_maps(wrapped, tok, "What is the capital of France?")
    # fresh LoRA adapters start at zero: the same weights as the bare model
    np.testing.assert_allclose(peft_maps["attentions"], att, atol=1e-6)
    assert wrapped.get_base_model().config._attn_implementation == before


def test_rollout_matches_hand_computation():
    # 2 layers, 2 heads, 3 tokens
    a = np.array(
        [
            [
                [[1.0, 0, 0], [0.5, 0.5, 0], [0.2, 0.3, 0.5]],
                [[0, 1.0, 0], [0, 0, 1.0], [1.0, 0, 0]],
            ],
            [
                [[0.6, 0.4, 0], [0, 1.0, 0], [0, 0.5, 0.5]],
                [[0.2, 0.2, 0.6], [0, 0, 1.0], [0, 0, 1.0]],
            ],
        ]
    )
    # layer means over heads, then 0.5 * A + 0.5 * I (rows already sum to 1)
    m1 = np.array([[0.5, 0.5, 0], [0.25, 0.25, 0.5], [0.6, 0.15, 0.25]])
    m2 = np.array([[0.4, 0.3, 0.3], [0, 0.5, 0.5], [0, 0.25, 0.75]])
    r1 = 0.5 * m1 + 0.5 * np.eye(3)  # [[.75,.25,0],[.125,.625,.25],[.3,.075,.625]]
    r2 = 0.5 * m2 + 0.5 * np.eye(3)  # [[.7,.15,.15],[0,.75,.25],[0,.125,.875]]
    expected = r2 @ r1  # the first layer is applied first
    # row 0 by hand: .7*[.75,.25,0] + .15*[.125,.625,.25] + .15*[.3,.075,.625]
    np.testing.assert_allclose(expected[0], [0.58875, 0.28, 0.13125])
    rollout = attention_rollout(a)
    np.testing.assert_allclose(rollout, expected, atol=1e-6)
    np.testing.assert_allclose(rollout.sum(-1), 1.0, atol=1e-6)
    # without the residual term: plain product of the head means
    np.testing.assert_allclose(attention_rollout(a, add_residual=False), m2 @ m1, atol=1e-6)
    # max fusion renormalises rows: layer-1 head max of row 0 is [1, 1, 0] -> [.5, .5, 0]
    fused = attention_rollout(a[:1], head_fusion="max", add_residual=False)
    np.testing.assert_allclose(fused[0], [0.5, 0.5, 0.0], atol=1e-6)
    with pytest.raises(TunelabError, match="head_fusion"):
        attention_rollout(a, head_fusion="median")


def test_grid_mosaic_holds_each_panel_and_counts_panels(bert_maps):
    att = bert_maps["attentions"]
    n = att.shape[-1]
    image, panels = grid_mosaic(bert_maps)
    assert [(p[0], p[1]) for p in panels] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for layer, head, top, left in panels:
        np.testing.assert_array_equal(image[top : top + n, left : left + n], att[layer, head])
    image, panels = grid_mosaic(bert_maps, layers=[1], heads=[0])
    assert len(panels) == 1 and image.shape == (n, n)
    with pytest.raises(TunelabError, match="layer"):
        grid_mosaic(bert_maps, layers=[2])


def test_pngs_are_valid_images(bert_maps, tmp_path):
    from PIL import Image

    fig, panels = attention_grid_figure(bert_maps, heads=[1])
    assert len(panels) == 2
    # token labels on the axes: every token once per panel row and per panel column
    axis = fig.axes[0]
    n = len(bert_maps["tokens"])
    assert len(axis.get_yticklabels()) == 2 * n and len(axis.get_xticklabels()) == n
    grid = plot_attention_grid(bert_maps, tmp_path / "grid.png")
    roll = plot_rollout(bert_maps, tmp_path / "roll.png")
    for path in (grid, roll):
        with Image.open(path) as im:
            im.verify()
        assert Image.open(path).format == "PNG" and Image.open(path).size[0] > 200
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png", "roll.png"]  # no temps


def test_long_inputs_get_thinned_labels():
    maps = small_maps([f"t{i}" for i in range(100)], layers=1, heads=1)
    fig, _ = attention_grid_figure(maps)
    assert 10 <= len(fig.axes[0].get_yticklabels()) <= 60


def test_html_is_offline_escapes_tokens_and_embeds_data():
    evil = "</script><script>alert(1)</script>"
    maps = small_maps(["[CLS]", evil, "<!--", "a&b", "[SEP]"])
    page = attention_html(maps, title="<b>report</b>")
    assert "<b>report</b>" not in page and "&lt;b&gt;report&lt;/b&gt;" in page
    assert "alert(1)" in page  # the token is there, escaped ...
    assert "<script>alert" not in page and "</script><script>alert" not in page
    assert "<!--" not in page  # ... and cannot open an HTML comment inside the script
    # no external resources: no http(s) URL in any src/href, no CDN
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", page)
    assert "cdn" not in page.lower()
    blob = re.search(r'<script type="application/json" class="tla-data">(.*?)</script>', page, re.S)
    data = json.loads(blob.group(1))
    assert data["tokens"][1] == evil and data["tokens"][3] == "a&b"
    assert (data["L"], data["H"], data["T"]) == (2, 2, 5)
    att = decode_attentions(data["att"], (2, 2, 5, 5))
    np.testing.assert_allclose(att, maps["attentions"], atol=1 / 65535)
    np.testing.assert_allclose(data["rollout"], maps["rollout"], rtol=1e-4, atol=1e-9)
    assert page.count("<script") == 2 and page.count("</script>") == 2
    fragment = attention_html(maps, title="t", fragment=True)
    assert fragment.startswith('<div class="tla"') and "<html" not in fragment


def test_write_attention_files_load_back(bert_maps, tmp_path):
    paths = write_attention(bert_maps, tmp_path / "out", stem="att")
    assert {p.name for p in paths.values()} == {
        "att.png",
        "att-rollout.png",
        "att.html",
        "att.json",
    }
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        p.name for p in paths.values()
    )
    data = json.loads(paths["json"].read_text())
    assert data["tokens"] == bert_maps["tokens"]
    assert data["shape"] == {"layers": 2, "heads": 2, "tokens": len(bert_maps["tokens"])}
    np.testing.assert_allclose(data["attentions"], bert_maps["attentions"], atol=1e-6)
    np.testing.assert_allclose(data["rollout"], bert_maps["rollout"], rtol=1e-4)
    assert "tla-data" in paths["html"].read_text()


def test_json_leaves_out_big_attention_arrays():
    maps = small_maps([f"t{i}" for i in range(60)], layers=8, heads=8)  # 230k values
    data = json.loads(json.dumps(maps_summary(maps)))
    assert data["attentions"] is None and "HTML" in data["attentions_note"]
    assert len(data["rollout"]) == 60
