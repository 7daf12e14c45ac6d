"""Per-row outputs of generative models (evaluation/report/rows_generate.py, text_rows.py) and the
report's generation section (generation_report.py): perplexity from kept per-row NLL against
the model computed row by row, subsets against the same rows scored alone, corpus BLEU/chrF
from kept statistics against sacrebleu on the strings, length statistics, rows without an
answer, and HTML escaping."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import write_jsonl

from tunelab.evaluation.report.generation import generation_html, most_different
from tunelab.evaluation.report.rows_generate import _length_stats, causal_lm_rows, seq2seq_rows
from tunelab.methods.loading import TrainedModel
from tunelab.metrics.text import text_metrics
from tunelab.metrics.text_rows import text_rows

GEN = {"max_new_tokens": 6}


def lm(path, seed: int | None = None) -> TrainedModel:
    """The tiny Llama as `tunelab eval` holds a causal-lm model; `seed` re-draws its weights."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(path)
    if seed is not None:  # another model: the weights nudged by seeded noise
        torch.manual_seed(seed)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.5 * torch.randn_like(p))
    return TrainedModel(model.eval(), AutoTokenizer.from_pretrained(path), None, 512, {
        "task": "causal-lm"
    })  # fmt: skip


@pytest.fixture(scope="module")
def tiny_lm(tiny_llama) -> TrainedModel:
    return lm(tiny_llama)


@pytest.fixture(scope="module")
def dev_rows(alpaca):
    return [json.loads(x) for x in alpaca[1].read_text().splitlines()][:10]


def by_hand_nll(trained: TrainedModel, rows: list[dict]) -> tuple[float, int]:
    """Summed answer NLL and token count, one unbatched forward per row."""
    from tunelab.tasks.causal_lm_data import encode_row

    total, count = 0.0, 0
    for row in rows:
        ids, labels = encode_row(row, "instruction", trained.tokenizer)
        with torch.no_grad():
            logits = trained.model(torch.tensor([ids])).logits[0, :-1]  # (T-1, V)
        target = torch.tensor(labels[1:])  # (T-1,)
        total += float(
            torch.nn.functional.cross_entropy(logits, target, ignore_index=-100, reduction="sum")
        )
        count += int((target != -100).sum())
    return total, count


def test_perplexity_is_token_weighted_over_rows(tiny_lm, dev_rows, tmp_path):
    trained = tiny_lm
    path = write_jsonl(tmp_path / "dev.jsonl", dev_rows)
    out = causal_lm_rows(trained, path, "tiny", generate_rows=3, gen=GEN, batch_size=4)
    nll, count = by_hand_nll(trained, dev_rows)
    assert out.n == len(dev_rows) and out.task == "causal-lm"
    assert out.metrics["tokens"] == count
    assert out.metric_fn(np.arange(out.n))["perplexity"] == pytest.approx(
        math.exp(nll / count), rel=1e-5
    )
    assert out.metrics["loss"] == pytest.approx(nll / count, rel=1e-5)
    # the packed path `tunelab eval` used before gives the same number
    from tunelab.evaluation.score_file import evaluate_file

    assert evaluate_file(trained, path)["perplexity"] == pytest.approx(
        out.metrics["perplexity"], rel=1e-4
    )


def test_subset_equals_those_rows_scored_alone(tiny_lm, dev_rows, tmp_path):
    trained = tiny_lm
    full = causal_lm_rows(
        trained, write_jsonl(tmp_path / "all.jsonl", dev_rows), "m", generate_rows=6, gen=GEN,
        batch_size=1,
    )  # fmt: skip
    pick = [4, 4, 1, 8]  # repeats, as a bootstrap resample has; row 8 was not generated for
    alone = causal_lm_rows(
        trained, write_jsonl(tmp_path / "pick.jsonl", [dev_rows[i] for i in pick]), "m",
        generate_rows=3, gen=GEN, batch_size=1,
    )  # fmt: skip
    got, want = full.metric_fn(np.array(pick)), alone.metrics
    for key in ("loss", "perplexity", "token_f1", "rougeL", "bleu", "stop_rate", "gen_tokens_mean"):
        assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-9), key
    assert alone.metrics["generated_rows"] == 3 and full.metrics["generated_rows"] == 6
    # no generated row among the chosen ones: generation metrics are NaN, perplexity is not
    none = full.metric_fn(np.array([7, 9]))
    assert math.isnan(none["token_f1"]) and math.isfinite(none["perplexity"])


def test_per_row_text_metrics_and_corpus_from_kept_statistics():
    preds = ["The cat sat", "hello there world", "a b c d e f", "", "x"]
    refs = [["a cat sat down"], ["hello world", "hello there"], ["a b c d e f"], ["y z"], ["x"]]
    rows = text_rows(preds, refs)
    # "the"/"a" dropped: pred {cat, sat}, ref {cat, sat, down}: P 1, R 2/3, F1 0.8
    assert rows.token_f1[0] == pytest.approx(80.0)
    assert rows.token_f1[1] == pytest.approx(80.0)  # against either reference: P 2/3, R 1
    assert list(rows.exact_match) == [0.0, 0.0, 100.0, 0.0, 100.0]
    assert rows.rouge["rougeL"][2] == pytest.approx(100.0)
    for index in (np.arange(5), np.array([0, 0, 3, 1]), np.array([2])):
        got = rows.corpus(index)
        want = text_metrics([preds[i] for i in index], [refs[i] for i in index])
        assert got == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_length_statistics(tiny_lm, dev_rows, tmp_path):
    assert _length_stats(np.array([1, 2, 3, 4, 10])) == {
        "mean": 4.0,
        "median": 3.0,
        "p90": pytest.approx(7.6),
        "max": 10.0,
    }
    trained = tiny_lm
    out = causal_lm_rows(
        trained, write_jsonl(tmp_path / "d.jsonl", dev_rows), "m", generate_rows=5, gen=GEN
    )
    lengths, per_row = out.details["lengths"], out.details["per_row"]
    refs = [trained.tokenizer(r["output"], add_special_tokens=False)["input_ids"] for r in dev_rows]
    assert [p["ref_tokens"] for p in per_row] == [len(x) for x in refs[:5]]
    assert [p["reference"] for p in per_row] == [r["output"] for r in dev_rows[:5]]
    assert all(p["gen_tokens"] <= GEN["max_new_tokens"] for p in per_row)
    gen = np.array([p["gen_tokens"] for p in per_row], dtype=float)
    ref = np.array([len(x) for x in refs[:5]], dtype=float)
    assert lengths["generated"]["mean"] == pytest.approx(gen.mean())
    assert lengths["reference"]["max"] == ref.max()
    assert lengths["ratio"] == pytest.approx(gen.mean() / ref.mean())
    assert out.details["distributions"]["token_f1"] == [p["token_f1"] for p in per_row]
    assert sum(out.details["finish"].values()) == 5


def test_rows_without_an_answer(tiny_lm, dev_rows, tmp_path):
    trained = tiny_lm
    text = write_jsonl(tmp_path / "text.jsonl", [{"text": r["output"]} for r in dev_rows[:4]])
    raw = causal_lm_rows(trained, text, "m", generate_rows=None, gen=GEN)
    assert set(raw.metric_fn(np.arange(4))) == {"loss", "perplexity"}
    assert "per_row" not in raw.details and generation_html([raw]) == ""
    rows = [dict(r) for r in dev_rows[:4]]
    rows[1]["output"] = "   "  # a blank answer: scored for perplexity, not generated for
    out = causal_lm_rows(trained, write_jsonl(tmp_path / "b.jsonl", rows), "m", gen=GEN)
    assert [p["row"] for p in out.details["per_row"]] == [1, 3, 4]
    assert out.metrics["generated_rows"] == 3 and out.n == 4
    blank = causal_lm_rows(
        trained, write_jsonl(tmp_path / "c.jsonl", rows[1:2]), "m", generate_rows=1, gen=GEN
    )
    assert set(blank.metrics) == {"loss", "perplexity", "tokens"} and blank.metrics["tokens"] > 0


def test_html_escapes_texts_and_compares_models(tiny_llama, tiny_lm, dev_rows, tmp_path):
    rows = [dict(r) for r in dev_rows[:4]]
    rows[0]["output"] = "<script>alert('x')</script>"
    rows[0]["instruction"] = "Say <b>hi</b> & bye"
    path = write_jsonl(tmp_path / "x.jsonl", rows)
    a = causal_lm_rows(tiny_lm, path, "<i>base</i>", gen=GEN)
    b = causal_lm_rows(lm(tiny_llama, seed=3), path, "tuned", gen=GEN)
    page = generation_html([a, b], figure_dir=tmp_path / "fig")
    assert "<script>" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "Say &lt;b&gt;hi&lt;/b&gt; &amp; bye" in page and "&lt;i&gt;base&lt;/i&gt;" in page
    assert (tmp_path / "fig" / "generation.png").read_bytes()[:4] == b"\x89PNG"
    assert page.count('src="data:image/png;base64,') == 1
    f1 = {
        r: [next(p["token_f1"] for p in o.details["per_row"] if p["row"] == r) for o in (a, b)]
        for r in range(1, 5)
    }
    spread = sorted((r for r in range(1, 5) if f1[r][0] != f1[r][1]), key=lambda r: -abs(
        f1[r][0] - f1[r][1]))  # fmt: skip
    assert most_different([a, b], k=5) == spread


# --- seq2seq ---------------------------------------------------------------------------

WORDS = "red blue green cat dog bird one two three house tree river".split()


@pytest.fixture(scope="module")
def tiny_bart():
    """A 2+2-layer BART with random weights over a word-level tokenizer (as test_seq2seq)."""
    from conftest import tiny_bart_model, word_tokenizer

    tok = word_tokenizer(WORDS)
    model = tiny_bart_model(len(tok)).eval()
    meta = {
        "task": "seq2seq",
        "columns": {"text": "text", "target": "target", "references": "refs"},
    }
    return TrainedModel(model, tok, None, 32, meta)


def test_seq2seq_rows(tiny_bart, tmp_path):
    from tunelab.evaluation.read_file import read_eval_split
    from tunelab.evaluation.scoring.seq2seq import target_loss
    from tunelab.tasks.seq2seq import featurize

    rng = np.random.default_rng(0)
    rows = []
    for _ in range(12):
        words = list(rng.choice(WORDS, size=rng.integers(2, 6)))
        target = " ".join(reversed(words))
        rows.append({"text": " ".join(words), "target": target, "refs": [target, "red cat"]})
    path = write_jsonl(tmp_path / "s.jsonl", rows)
    out = seq2seq_rows(tiny_bart, path, "bart", generate_rows=8, gen=GEN, batch_size=5)
    feats = featurize(read_eval_split(tiny_bart, path), tiny_bart.tokenizer, 32)
    loss, count = target_loss(tiny_bart.model, feats, 4, 0)
    assert out.metrics["tokens"] == count
    assert out.metrics["perplexity"] == pytest.approx(math.exp(loss), rel=1e-5)
    generated = [p["generated"] for p in out.details["per_row"]]
    assert [p["row"] for p in out.details["per_row"]] == list(range(1, 9))
    pick = np.array([5, 0, 0, 7, 10])  # row 10 was not generated for: generation metrics skip it
    want = text_metrics(
        [generated[i] for i in (5, 0, 0, 7)], [rows[i]["refs"] for i in (5, 0, 0, 7)]
    )
    got = out.metric_fn(pick)
    for key in ("bleu", "chrf", "rougeL", "token_f1", "exact_match"):
        assert got[key] == pytest.approx(want[key], abs=1e-9), key
    assert "stop_rate" not in got
