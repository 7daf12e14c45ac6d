"""Extractive QA: reading and validation, windows, loss, span post-processing, a tiny model
that learns, and the lexical baseline on real SQuAD rows."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import SHARED_DATASETS, minilm_dir, write_jsonl

from tunelab.errors import ConfigError, DataError
from tunelab.tasks import extractive_qa as qa
from tunelab.tasks.extractive_qa_data import QAExample, hold_out, load_data, read_examples
from tunelab.tasks.extractive_qa_windows import (
    answer_positions,
    default_question_length,
    default_stride,
    featurize,
)

SQUAD = SHARED_DATASETS / "squad"
CONTEXT = "Denver Broncos beat the Carolina Panthers 24–10 at Levi's Stadium."


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_dir())


@pytest.fixture(scope="module")
def squad_rows() -> list[QAExample]:
    if not (SQUAD / "validation.jsonl").is_file():
        pytest.skip("../shared/datasets is not beside the repo")
    return read_examples(SQUAD / "validation.jsonl")


def _row(question="Who won?", context=CONTEXT, text="Denver Broncos", start=0, **extra):
    return {"question": question, "context": context, "answers": {"text": [text],
            "answer_start": [start]}, **extra}  # fmt: skip


def _example(question: str, context: str, answer: str, qid: str = "q") -> QAExample:
    return QAExample(qid, question, context, [answer], [context.index(answer)], 1)


# reading ------------------------------------------------------------------------------


def test_flat_answer_layouts_read_alike(tmp_path):
    hf = write_jsonl(tmp_path / "hf.jsonl", [_row(id="a")])
    listed = write_jsonl(
        tmp_path / "list.jsonl",
        [{**_row(id="a"), "answers": [{"text": "Denver Broncos", "answer_start": 0}]}],
    )
    csv = tmp_path / "rows.csv"
    import pandas as pd

    pd.DataFrame([{**_row(id="a"), "answers": json.dumps(_row()["answers"])}]).to_csv(
        csv, index=False
    )
    got = [read_examples(p)[0] for p in (hf, listed, csv)]
    assert all(e == got[0] for e in got)
    assert got[0].answers == ["Denver Broncos"] and got[0].answer_starts == [0]
    assert got[0].id == "a" and got[0].row == 1


def test_official_json_and_flat_jsonl_agree_on_the_dev_set(squad_rows):
    nested = read_examples(SQUAD / "dev-v1.1.json")
    assert len(nested) == len(squad_rows) == 10570
    for a, b in zip(nested[::97], squad_rows[::97], strict=True):
        assert (a.id, a.question, a.context, a.answers, a.answer_starts) == (
            b.id, b.question, b.context, b.answers, b.answer_starts
        )  # fmt: skip


def test_an_answer_not_at_its_start_names_file_row_column_and_where_it_is(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [_row(), _row(text="Carolina Panthers", start=23)])
    with pytest.raises(DataError) as e:
        read_examples(path)
    msg = str(e.value)
    assert e.value.row == 2 and e.value.column == "answers" and str(path) in msg
    assert "not at answer_start 23" in msg and "occurs at 24" in msg


def test_nested_json_errors_name_the_question_and_its_json_path(tmp_path):
    qas = [
        {"id": "ok", "question": "Who won?", "answers": [{"text": "Denver", "answer_start": 0}]},
        {"id": "x", "question": "Who?", "answers": [{"text": "Rome", "answer_start": 3}]},
    ]
    path = tmp_path / "squad.json"
    path.write_text(json.dumps({"data": [{"paragraphs": [{"context": CONTEXT, "qas": qas}]}]}))
    with pytest.raises(DataError) as e:
        read_examples(path)
    assert e.value.row == 2
    assert e.value.column == "data[0].paragraphs[0].qas[1].answers"
    assert "not in the context" in str(e.value)


@pytest.mark.parametrize(
    "answers, reason",
    [
        ({"text": [], "answer_start": []}, "unanswerable"),
        ({"text": ["Denver"], "answer_start": [0, 5]}, "1 answer texts but 2"),
        ({"text": ["Denver"]}, "needs 'text' and 'answer_start'"),
        ("Denver", "expected answers as JSON"),
        ({"text": ["Denver"], "answer_start": ["0"]}, "not a character offset"),
    ],
)
def test_malformed_answers_are_data_errors(tmp_path, answers, reason):
    path = write_jsonl(tmp_path / "bad.jsonl", [{**_row(), "answers": answers}])
    with pytest.raises(DataError, match=reason):
        read_examples(path)


def test_column_names_and_context_grouped_hold_out(tmp_path):
    rows = [
        {"q": f"Question {i}?", "c": f"Paragraph {i // 3} says Denver {i}.", "a": {
            "text": ["Denver"], "answer_start": [len(f"Paragraph {i // 3} says ")]}}
        for i in range(30)
    ]  # fmt: skip
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    data_cfg = SimpleNamespace(
        train=str(train), validation=None, test=None, question="q", context="c", answers="a",
        max_train_rows=None, validation_size=0.2,
    )  # fmt: skip
    data = load_data(SimpleNamespace(data=data_cfg, train=SimpleNamespace(seed=0)))
    tr, va = data.splits["train"], data.splits["validation"]
    assert data.validation_from_train and len(tr) + len(va) == 30 and len(va) > 0
    assert not {e.context for e in tr.examples} & {e.context for e in va.examples}
    assert hold_out(tr, 0.2, 0)[1].examples == hold_out(tr, 0.2, 0)[1].examples  # seeded


# windows ------------------------------------------------------------------------------


def test_default_stride_is_128_at_384_and_scales_down():
    assert default_question_length(384) == 64 and default_stride(384, 64) == 128
    assert default_stride(64, default_question_length(64)) == 21
    with pytest.raises(ConfigError, match="data.max_length"):
        default_stride(8, 4)


def test_windows_cover_every_answer_and_map_back_to_its_exact_characters(tok, squad_rows):
    examples = squad_rows[::40]  # 265 questions over many paragraphs
    f = featurize(examples, tok, 64)
    assert len(f) > 2 * len(examples)  # long contexts really are windowed
    assert max(f.lengths) <= 64 and f.labels.shape == (len(f), 2)
    covered = set()
    for w, ex in enumerate(f.example_index.tolist()):
        e, offsets, (s, t) = examples[ex], f.offsets[w], f.labels[w]
        seq = f.columns["token_type_ids"][w]
        # None exactly on the question and the special tokens ([CLS], [SEP], final [SEP])
        last = len(offsets) - 1
        assert all((o is None) == (seq[k] == 0 or k == last) for k, o in enumerate(offsets))
        ctx = [o for o in offsets if o]
        inside = [  # the gold answers wholly inside this window
            k
            for k, (start, end) in enumerate(zip(e.answer_starts, e.answer_ends, strict=True))
            if ctx[0][0] <= start and end <= ctx[-1][1]
        ]
        if s == f.cls_index[w]:
            assert t == s and not inside
            continue
        covered.add(ex)
        k = inside[0]  # the label is the first gold answer the window holds
        a, b = offsets[s][0], offsets[t][1]
        text, start, end = e.answers[k], e.answer_starts[k], e.answer_ends[k]
        assert a <= start and end <= b and text in e.context[a:b]
        if start in {o[0] for o in ctx} and end in {o[1] for o in ctx}:
            assert e.context[a:b] == text  # the answer is whole tokens: exactly it
    stride = default_stride(64, default_question_length(64))
    short = {  # examples with a gold answer of at most doc_stride tokens: always in a window
        i
        for i, e in enumerate(examples)
        if min(len(tok(a, add_special_tokens=False)["input_ids"]) for a in e.answers) <= stride
    }
    assert len(short) > 0.95 * len(examples) and short <= covered


def test_answer_outside_a_window_points_at_cls():
    offsets = [None, None, (0, 6), (7, 14), None]
    assert answer_positions(offsets, 7, 14, 0) == (3, 3)
    assert answer_positions(offsets, 0, 14, 0) == (2, 3)
    assert answer_positions(offsets, 20, 25, 0) == (0, 0)  # beyond this window
    assert answer_positions(offsets, 10, 20, 0) == (0, 0)  # only partly inside


def test_hand_made_windows_and_offsets_reconstruct_the_exact_answer(tok):
    filler = " ".join(f"word{i} is here." for i in range(40))
    context = f"{filler} The final score was 24–10 for the Broncos. {filler}"
    e = _example("What was the final score?", context, "24–10")
    f = featurize([e], tok, 32)
    hits = [w for w in range(len(f)) if f.labels[w, 0] != f.cls_index[w]]
    assert len(f) > 5 and hits
    logits = np.zeros((len(f), 32, 2))  # (W, T, 2), padded past each window's length
    for w in hits:
        logits[w, f.labels[w, 0], 0] = logits[w, f.labels[w, 1], 1] = 8.0
    (out,) = qa.predict(logits, f, [e])
    assert out["answer"] == "24–10" and context[out["start"] : out["end"]] == "24–10"
    assert out["start"] == e.answer_starts[0] and 0.5 < out["probability"] <= 1.0


def test_slow_tokenizers_are_refused():
    from tunelab.errors import ModelSourceError

    with pytest.raises(ModelSourceError, match="fast"):
        featurize([], SimpleNamespace(is_fast=False), 64)


# post-processing ----------------------------------------------------------------------


def test_spans_stay_inside_the_context_and_obey_the_limits(tok):
    e = _example("Who beat the Carolina Panthers?", CONTEXT, "Denver Broncos")
    f = featurize([e], tok, 64)
    rng = np.random.default_rng(0)
    n = len(f.offsets[0])
    for _ in range(20):
        start, end = rng.normal(size=(1, n)), rng.normal(size=(1, n))
        q = [k for k, o in enumerate(f.offsets[0]) if o is None]
        start[0, q] = end[0, q] = 50.0  # question/special tokens are never chosen
        (out,) = qa.best_spans(start, end, f, [e], max_answer_tokens=3)
        ctx = [k for k, o in enumerate(f.offsets[0]) if o is not None]
        assert 0 <= out["start"] < out["end"] <= len(CONTEXT)
        assert CONTEXT[out["start"] : out["end"]] == out["answer"]
        toks = [k for k in ctx if f.offsets[0][k][0] >= out["start"]
                and f.offsets[0][k][1] <= out["end"]]  # fmt: skip
        assert 1 <= len(toks) <= 3 and out["score"] < 50
        assert 0 < out["probability"] <= 1


def test_predict_takes_a_tuple_a_list_or_an_array(tok):
    e = _example("Who beat the Carolina Panthers?", CONTEXT, "Denver Broncos")
    f = featurize([e], tok, 64)
    arr = np.random.default_rng(1).normal(size=(1, len(f.offsets[0]), 2))
    a = qa.predict(arr, f, [e])
    assert a == qa.predict((arr[..., 0], arr[..., 1]), f, [e]) == qa.predict(list(arr), f, [e])
    assert set(a[0]) == {"id", "answer", "start", "end", "score", "probability"}


# model and loss -----------------------------------------------------------------------


def _tiny_qa_model(tok, seed: int = 0):
    import torch
    from transformers import BertConfig, BertForQuestionAnswering

    config = BertConfig(
        vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128,
    )  # fmt: skip
    torch.manual_seed(seed)
    return BertForQuestionAnswering(config)


def test_loss_is_what_the_hf_head_computes_in_every_logits_layout(tok, squad_rows):
    import torch

    from tunelab.data.batching import collate

    f = featurize(squad_rows[:6], tok, 96)
    batch = collate(f, np.arange(len(f)), tok.pad_token_id)
    labels = batch.pop("labels")
    assert labels.shape == (len(f), 2)  # tunelab's collate already carries the positions
    model = _tiny_qa_model(tok).eval()
    with torch.no_grad():
        out = model(**batch, start_positions=labels[:, 0], end_positions=labels[:, 1])
    want = out.loss
    assert qa.loss(qa.model_logits(out), labels) == pytest.approx(want.item(), rel=1e-5)
    assert qa.loss((out.start_logits, out.end_logits), labels).item() == pytest.approx(want.item())
    assert qa.loss(out, labels).item() == pytest.approx(want.item())
    far = labels.clone()
    far[0] = 10_000  # clamped to T and ignored, as HF does
    out2 = model(**batch, start_positions=far[:, 0], end_positions=far[:, 1])
    assert qa.loss(qa.model_logits(out2), far).item() == pytest.approx(out2.loss.item(), rel=1e-5)


def test_load_model_gives_a_span_head(tiny_model, tok):
    from tunelab.models.sources import resolve_model

    model = qa.load_model(resolve_model(str(tiny_model)), None, None, tok)
    assert type(model).__name__ == "BertForQuestionAnswering"
    assert model.qa_outputs.out_features == 2


def test_a_tiny_qa_model_learns_a_handful_of_examples(tok, squad_rows):
    import torch

    from tunelab.data.batching import collate

    examples = squad_rows[:200:25]  # 8 questions over different paragraphs
    f = featurize(examples, tok, 96)
    keep = np.array([f.labels[w, 0] != f.cls_index[w] for w in range(len(f))])
    index = np.flatnonzero(keep)  # the windows that hold their answer
    batch = collate(f, index, tok.pad_token_id)
    labels = batch.pop("labels")
    model = _tiny_qa_model(tok, seed=1)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = qa.loss(qa.model_logits(model(**batch)), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::8]
    model.eval()
    with torch.no_grad():
        logits = qa.model_logits(model(**collate(f, np.arange(len(f)), tok.pad_token_id)))
    answers = qa.predict(logits.numpy(), f, examples)
    for a, e in zip(answers, examples, strict=True):
        assert e.context[a["start"] : a["end"]] == a["answer"] and a["answer"]
    assert qa.score(answers, examples)["f1"] > 0.5  # it memorised its training questions
