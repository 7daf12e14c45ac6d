"""Token classification (NER): entity decoding and scores (checked against seqeval when it is
installed), CoNLL-2003 rows in and bad rows out, sub-word label alignment, and a tiny tagger
that learns fixed names and finds them again with the right character spans."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from conftest import minilm_dir, write_jsonl

from tunelab.config.schema import RunConfig
from tunelab.data import LabelSpace
from tunelab.data.batching import collate
from tunelab.errors import DataError
from tunelab.evaluation.scoring.entities import (
    bio_entities,
    entity_metrics,
    evaluate_token_file,
    lexicon_baseline,
    predict_entities,
    score_token_features,
    split_words,
)
from tunelab.tasks import token_classification as task

CONLL = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "conll2003"


def _cfg(train: Path, validation: Path | None = None, model: str = "x", **data) -> RunConfig:
    d = {"train": str(train), "text": "tokens", "label": "ner_tags", **data}
    if validation is not None:
        d["validation"] = str(validation)
    return RunConfig.model_validate({"model": model, "task": "token-classification", "data": d})


# --- entities and metrics ------------------------------------------------------------------


@pytest.mark.parametrize(
    "tags, entities",
    [
        (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 2), ("LOC", 3, 4)]),
        (["O", "I-PER", "I-PER"], [("PER", 1, 3)]),  # I- with no B- starts an entity
        (["B-PER", "I-LOC"], [("PER", 0, 1), ("LOC", 1, 2)]),  # type change splits
        (["B-PER", "B-PER"], [("PER", 0, 1), ("PER", 1, 2)]),
        (["I-ORG", "I-ORG", "B-ORG", "O"], [("ORG", 0, 2), ("ORG", 2, 3)]),  # IOB1
        (["PER", "PER", "O", "LOC"], [("PER", 0, 2), ("LOC", 3, 4)]),  # bare types (IO)
        (["S-PER", "B-LOC", "E-LOC", "O"], [("PER", 0, 1), ("LOC", 1, 3)]),  # BIOES
        (["O", "O"], []),
    ],
)
def test_bio_entities(tags, entities):
    assert bio_entities(tags) == entities


def test_entity_metrics_hand_counted():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-PER"]]
    pred = [["B-PER", "O", "O", "B-ORG"], ["B-ORG", "O", "B-PER"]]
    m = entity_metrics(gold, pred)
    # gold: PER(0-2) LOC ORG PER = 4; pred: PER(0-1) ORG(wrong type) ORG PER = 4; hits: 2
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(0.5)
    assert m["accuracy"] == pytest.approx(5 / 7)
    assert m["per_type"]["PER"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["per_type"]["LOC"]["recall"] == 0.0 and m["per_type"]["LOC"]["support"] == 1
    assert m["per_type"]["ORG"]["precision"] == 0.5 and m["per_type"]["ORG"]["recall"] == 1.0
    assert (m["n"], m["n_tokens"], m["n_entities"]) == (2, 7, 4)
    assert entity_metrics(gold, gold)["f1"] == 1.0
    with pytest.raises(ValueError, match="sentence 0"):
        entity_metrics(gold, [["O"], pred[1]])


def test_entity_metrics_match_seqeval():
    seqeval = pytest.importorskip("seqeval.metrics")
    rng = random.Random(0)
    tags = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG", "B-ORG"]
    gold, pred = [], []
    for _ in range(300):
        n = rng.randint(1, 12)
        g = [rng.choice(tags) for _ in range(n)]
        gold.append(g)
        pred.append([t if rng.random() < 0.7 else rng.choice(tags) for t in g])
    m = entity_metrics(gold, pred)
    assert 0.2 < m["f1"] < 0.95  # a real mix of hits and misses
    assert m["f1"] == pytest.approx(seqeval.f1_score(gold, pred))
    assert m["precision"] == pytest.approx(seqeval.precision_score(gold, pred))
    assert m["recall"] == pytest.approx(seqeval.recall_score(gold, pred))
    report = seqeval.classification_report(gold, pred, output_dict=True)
    for type_, s in m["per_type"].items():
        assert s["f1"] == pytest.approx(report[type_]["f1-score"])
        assert s["support"] == report[type_]["support"]


def test_lexicon_baseline_tags_known_words():
    train = task.TokenSplit("train", "t", [["Paris", "is", "big"]], [[1, 0, 0]])
    dev = task.TokenSplit("validation", "v", [["Paris", "Rome"]], [[1, 1]])
    labels = LabelSpace(["O", "B-LOC"], multi_label=False)
    m = lexicon_baseline(train, {"validation": dev}, labels)["validation"]
    assert (m["precision"], m["recall"]) == (1.0, 0.5)  # Paris found, unseen Rome missed


# --- data ----------------------------------------------------------------------------------


def _conll_rows(n: int) -> list[dict]:
    if not (CONLL / "train.jsonl").exists():
        pytest.skip("../shared/datasets/conll2003 not available")
    with open(CONLL / "train.jsonl", encoding="utf-8") as f:
        return [json.loads(next(f)) for _ in range(n)]


def test_load_data_conll(tmp_path):
    rows = _conll_rows(200)
    train = write_jsonl(tmp_path / "train.jsonl", rows[:150])
    dev = write_jsonl(tmp_path / "dev.jsonl", rows[150:])
    data = task.load_data(_cfg(train, dev))
    names = data.labels.names
    assert names[0] == "O" and {"B-PER", "I-PER", "B-LOC", "B-ORG", "B-MISC"} <= set(names)
    assert names[1:] == sorted(names[1:])
    split = data.splits["validation"]
    assert len(split) == 50 and split.rows[0] == 1 and not data.validation_from_train
    assert split.words[3] == rows[153]["tokens"]
    assert [names[t] for t in split.tags[3]] == rows[153]["ner_tags"]

    held = task.load_data(_cfg(train))  # no validation file: seeded 10% hold-out
    t, v = held.splits["train"], held.splits["validation"]
    assert held.validation_from_train and (len(t), len(v)) == (135, 15)
    assert sorted(t.rows + v.rows) == list(range(1, 151))
    assert task.load_data(_cfg(train)).splits["validation"].rows == v.rows


def _bad(tmp_path, rows, dev_rows=None):
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    dev = write_jsonl(tmp_path / "dev.jsonl", dev_rows) if dev_rows else None
    with pytest.raises(DataError) as err:
        task.load_data(_cfg(train, dev))
    return err.value


def test_bad_rows_name_file_row_and_column(tmp_path):
    ok = {"tokens": ["Peter", "Blackburn"], "ner_tags": ["B-PER", "I-PER"]}
    short = {"tokens": ["EU", "rejects"], "ner_tags": ["B-ORG"]}
    e = _bad(tmp_path, [ok, ok, short])
    assert (e.row, e.column) == (3, "ner_tags") and "train.jsonl" in str(e)
    assert "2 words but 1 tags" in str(e)

    unknown = {"tokens": ["Bonn"], "ner_tags": ["B-GPE"]}
    e = _bad(tmp_path, [ok, {"tokens": ["x"], "ner_tags": ["O"]}], [ok, unknown])
    assert (e.file.endswith("dev.jsonl"), e.row, e.column) == (True, 2, "ner_tags")
    assert "'B-GPE'" in str(e) and "train.jsonl" in str(e)

    e = _bad(tmp_path, [ok, {"tokens": [], "ner_tags": []}])
    assert (e.row, e.column) == (2, "tokens") and "empty" in str(e)

    e = _bad(tmp_path, [ok, {"tokens": "EU rejects", "ner_tags": ["B-ORG", "O"]}])
    assert (e.row, e.column) == (2, "tokens") and "list of words" in str(e)


def test_integer_tags_need_names(tmp_path):
    rows = [{"tokens": ["Peter", "said"], "ner_tags": [1, 0]}, {"tokens": ["x"], "ner_tags": [0]}]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(DataError, match="label_names"):
        task.load_data(_cfg(train))
    data = task.load_data(_cfg(train, train, label_names=["O", "B-PER"]))
    assert data.labels.names == ["O", "B-PER"] and data.splits["train"].tags[0] == [1, 0]


# --- features ------------------------------------------------------------------------------


def test_featurize_labels_first_subtoken_only():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(minilm_dir())
    words = [["Arnold", "Schwarzenegger", "visited", "Paris", "."], ["Hi"]]
    split = task.TokenSplit("t", "t", words, [[1, 2, 0, 3, 0], [0]])
    feats = task.featurize(split, tok, None)
    ids, labels = feats.columns["input_ids"][0], feats.labels[0]
    assert len(labels) == len(ids)
    pieces = tok.convert_ids_to_tokens(ids)
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]"
    assert labels[0] == labels[-1] == -100
    first = pieces.index("schwarz")
    assert pieces[first + 1].startswith("##")  # the name really is split into sub-words
    assert labels[first] == 2 and labels[first + 1] == -100
    assert [x for x in labels if x != -100] == [1, 2, 0, 3, 0]  # one label per word, in order

    cut = task.featurize(split, tok, 5)  # [CLS] + 3 sub-tokens + [SEP]
    assert all(len(c) <= 5 for c in cut.columns["input_ids"])
    for i in range(len(split)):
        assert len(cut.labels[i]) == len(cut.columns["input_ids"][i])
    assert [x for x in cut.labels[0] if x != -100] == [1, 2]  # words that fit keep their tags
    assert cut.labels[0][-1] == -100


def test_split_words_spans():
    text = 'Angela Merkel visited Paris. "The U.S. (too)," she said'
    words = split_words(text)
    assert [w for w, _, _ in words] == [
        "Angela", "Merkel", "visited", "Paris", ".", '"', "The", "U.S.", "(", "too", ")", ",",
        '"', "she", "said",
    ]  # fmt: skip
    assert all(text[s:e] == w for w, s, e in words)


def test_loss_ignores_unlabelled_positions():
    import torch
    import torch.nn.functional as F

    logits = torch.randn(2, 4, 3)
    labels = torch.full((2, 4), -100)
    labels[0, 1], labels[1, 2] = 2, 0
    want = F.cross_entropy(torch.stack([logits[0, 1], logits[1, 2]]), torch.tensor([2, 0]))
    assert task.loss(logits, labels).item() == pytest.approx(want.item(), rel=1e-5)


# --- a tiny tagger -------------------------------------------------------------------------

PER, LOC = ["alice", "bob", "carol"], ["paris", "rome", "berlin"]
TEMPLATES = ["{p} went to {l} .", "{p} lives in {l}", "in {l} , {p} met {q} .", "{p} and {q} left"]


def _toy_ner(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        t = rng.choice(TEMPLATES)
        p, q = rng.sample(PER, 2)
        loc = rng.choice(LOC + ["new york"])
        words, tags = [], []
        for w in t.format(p=p, q=q, l=loc).split():
            kind = "PER" if w in PER else "LOC" if w in LOC + ["new", "york"] else None
            words.append(w)
            tags.append("O" if kind is None else ("I-" if w == "york" else "B-") + kind)
        rows.append({"tokens": words, "ner_tags": tags})
    return rows


def test_tiny_tagger_learns_entities(tiny_model, tmp_path):
    import torch

    from tunelab.methods.loading import TrainedModel
    from tunelab.models.loading import load_tokenizer
    from tunelab.models.sources import resolve_model

    train = write_jsonl(tmp_path / "train.jsonl", _toy_ner(160, 1))
    dev = write_jsonl(tmp_path / "dev.jsonl", _toy_ner(40, 2))
    cfg = _cfg(train, dev, model=str(tiny_model))
    data = task.load_data(cfg)
    source = resolve_model(str(tiny_model))
    tok = load_tokenizer(source)
    torch.manual_seed(0)
    model = task.load_model(source, data, cfg, tok)
    assert model.config.id2label[0] == "O" and model.num_labels == 4
    feats = task.featurize(data.splits["train"], tok, 32)
    dev_feats = task.featurize(data.splits["validation"], tok, 32)
    before = score_token_features(model, dev_feats, data.labels, 16, tok.pad_token_id)

    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    rng = np.random.default_rng(0)
    model.train()
    for _ in range(4):
        for index in np.array_split(rng.permutation(len(feats)), 10):
            batch = collate(feats, index, tok.pad_token_id)  # ragged labels padded with -100
            labels = batch.pop("labels")  # (B, T)
            assert labels.shape == batch["input_ids"].shape
            loss = task.loss(model(**batch).logits, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()

    after = score_token_features(model, dev_feats, data.labels, 16, tok.pad_token_id)
    assert before["f1"] < 0.6 and after["f1"] > 0.8, (before, after)
    assert after["loss"] < before["loss"] / 5
    assert set(after["per_type"]) == {"PER", "LOC"}

    dev_split, pad = data.splits["validation"], tok.pad_token_id
    short = task.featurize(dev_split, tok, 6)  # cuts most sentences
    hidden = score_token_features(model, short, data.labels, 16, pad)
    honest = score_token_features(model, short, data.labels, 16, pad, dev_split)
    assert honest["truncated_words"] > 0 and honest["n_entities"] == after["n_entities"]
    assert honest["recall"] < hidden["recall"]  # cut-off entities count as missed

    meta = {"columns": {"text": "tokens", "label": "ner_tags"}}
    trained = TrainedModel(model, tok, data.labels, 32, meta)
    assert evaluate_token_file(trained, dev)["f1"] == pytest.approx(after["f1"])
    out = predict_entities(trained, ["alice went to paris .", "", "bob lives in new york"])
    spans = [(e["type"], e["text"], e["start"], e["end"]) for e in out[0]["entities"]]
    assert spans == [("PER", "alice", 0, 5), ("LOC", "paris", 14, 19)]
    assert out[0]["tags"] == ["B-PER", "O", "O", "B-LOC", "O"]
    assert all(0 < e["score"] <= 1 for e in out[0]["entities"])
    assert out[1]["entities"] == []
    assert ("LOC", "new york") in [(e["type"], e["text"]) for e in out[2]["entities"]]
