"""Masked-LM task: raw-text reading, block featurization, BERT masking statistics, deterministic
evaluation, perplexity falling on domain text, and the saved model starting a classifier."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import write_jsonl

from tunelab.config.schema import DataConfig
from tunelab.errors import DataError
from tunelab.evaluation.scoring.mlm import score_mlm_features
from tunelab.models.sources import resolve_model
from tunelab.tasks import mlm

ADJ = ["red", "small", "old", "quiet", "bright", "heavy"]
NOUN = ["pump", "valve", "turbine", "sensor", "boiler", "cable"]
VERB = ["feeds", "cools", "drives", "checks", "powers"]
PLACE = ["plant", "station", "tower", "yard"]


def sentences(n: int, seed: int) -> list[str]:
    """Repetitive domain text from a small template grammar."""
    rng = random.Random(seed)
    return [
        f"the {rng.choice(ADJ)} {rng.choice(NOUN)} {rng.choice(VERB)} the "
        f"{rng.choice(NOUN)} at the {rng.choice(PLACE)} ."
        for _ in range(n)
    ]


def cfg_for(train: Path, **data) -> SimpleNamespace:
    """What load_data reads of a RunConfig: the data section and the seed."""
    return SimpleNamespace(
        data=DataConfig(train=str(train), **data), train=SimpleNamespace(seed=0, dropout=None)
    )


@pytest.fixture(scope="module")
def tok(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def test_load_txt_skips_blank_lines_and_holds_out_validation(tmp_path):
    lines = sentences(40, 0)
    path = tmp_path / "domain.txt"
    path.write_text(lines[0] + "\n\n  \n" + "\n".join(lines[1:]) + "\n", encoding="utf-8")
    data = mlm.load_data(cfg_for(path, validation_size=0.25))
    train, val = data.splits["train"], data.splits["validation"]
    assert data.labels is None and data.validation_from_train
    assert (len(train), len(val)) == (30, 10)
    assert sorted(train.texts + val.texts) == sorted(lines)
    assert train.rows[0] == 1 or val.rows[0] == 1
    assert 2 not in train.rows + val.rows and 4 in train.rows + val.rows  # line numbers kept
    again = mlm.load_data(cfg_for(path, validation_size=0.25)).splits["validation"]
    assert again.texts == val.texts  # seeded


def test_load_jsonl_text_column_and_validation_file(tmp_path):
    rows = [{"body": s, "id": i} for i, s in enumerate(sentences(12, 1))]
    rows[3]["body"] = "   "  # blank rows are skipped, not an error
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    dev = tmp_path / "dev.txt"
    dev.write_text("\n".join(sentences(3, 2)), encoding="utf-8")
    data = mlm.load_data(cfg_for(train, text="body", validation=str(dev)))
    split = data.splits["train"]
    assert len(split) == 11 and 4 not in split.rows and split.rows[:3] == [1, 2, 3]
    assert split.texts[0] == rows[0]["body"] and len(data.splits["validation"]) == 3
    assert not data.validation_from_train


def test_bad_inputs_name_file_and_column(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", encoding="utf-8")
    with pytest.raises(DataError, match="empty.txt: empty file"):
        mlm.load_data(cfg_for(empty))
    table = write_jsonl(tmp_path / "t.jsonl", [{"content": "a b c"}, {"content": "d e"}])
    with pytest.raises(DataError, match=r"t\.jsonl, column 'text': column 'text' not found"):
        mlm.load_data(cfg_for(table))
    blank = write_jsonl(tmp_path / "b.jsonl", [{"text": ""}, {"text": None}])
    with pytest.raises(DataError, match=r"b\.jsonl, column 'text': no text"):
        mlm.load_data(cfg_for(blank))


def test_featurize_cuts_documents_into_framed_blocks(tok):
    docs = sentences(25, 3)
    split = mlm.TextChunks("train", "x.txt", docs, list(range(1, 26)))
    feats = mlm.featurize(split, tok, 24)
    blocks = feats.columns["input_ids"]
    assert all(len(b) == 24 for b in blocks[:-1]) and 3 <= len(blocks[-1]) <= 24
    assert all(b[0] == tok.cls_token_id and b[-1] == tok.sep_token_id for b in blocks)
    assert feats.labels is None and feats.mask_id == tok.mask_token_id
    inner = [t for b in blocks for t in b[1:-1] if t != tok.sep_token_id]
    expected = [t for d in docs for t in tok(d, add_special_tokens=False)["input_ids"]]
    assert inner == expected  # every token, in order, nothing else
    per_doc = mlm.featurize(split, tok, None)  # runs/train.py measures lengths so
    assert len(per_doc) == 25 and per_doc.lengths[0] == len(tok(docs[0])["input_ids"])


def _big_batch(tok, seed: int = 0):
    docs = sentences(400, seed)
    feats = mlm.featurize(mlm.TextChunks("t", "t", docs, []), tok, 64)
    index = np.arange(len(feats))
    return feats, mlm.pad_collate(feats, index, tok.pad_token_id)


def test_masking_rates_and_special_positions(tok):
    feats, plain = _big_batch(tok)
    torch.manual_seed(0)
    batch = mlm.collate(feats, np.arange(len(feats)), tok.pad_token_id)
    ids, labels, masked = plain["input_ids"], batch["labels"], batch["input_ids"]
    special = torch.isin(ids, torch.tensor(feats.special_ids))
    maskable = ~special & plain["attention_mask"].bool()
    chosen = labels != -100
    assert not chosen[~maskable].any() and (masked[~maskable] == ids[~maskable]).all()
    assert (labels[chosen] == ids[chosen]).all()
    assert abs(chosen.sum().item() / maskable.sum().item() - 0.15) < 0.02
    n = chosen.sum().item()
    to_mask = (masked[chosen] == tok.mask_token_id).sum().item() / n
    kept = (masked[chosen] == ids[chosen]).sum().item() / n
    assert abs(to_mask - 0.8) < 0.05 and abs(kept - 0.1) < 0.05
    assert abs(1 - to_mask - kept - 0.1) < 0.05  # random replacements
    assert (masked[~chosen] == ids[~chosen]).all()


def test_masking_deterministic_with_seed_or_generator(tok):
    feats, _ = _big_batch(tok)
    index = np.arange(8)
    torch.manual_seed(5)
    a = mlm.collate(feats, index, tok.pad_token_id)
    torch.manual_seed(5)
    b = mlm.collate(feats, index, tok.pad_token_id)
    assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["labels"], b["labels"])
    state = torch.get_rng_state()
    g1 = mlm.collate(feats, index, 0, generator=torch.Generator().manual_seed(1))
    g2 = mlm.collate(feats, index, 0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(g1["labels"], g2["labels"]) and not torch.equal(g1["labels"], a["labels"])
    assert torch.equal(torch.get_rng_state(), state)  # a generator leaves the global RNG alone


def test_loss_ignores_unmasked_and_survives_no_mask():
    logits = torch.randn(2, 3, 5, requires_grad=True)
    labels = torch.full((2, 3), -100)
    labels[0, 1] = 4
    expected = torch.nn.functional.cross_entropy(logits[0, 1][None], torch.tensor([4]))
    assert torch.allclose(mlm.loss(logits, labels), expected)
    zero = mlm.loss(logits, torch.full((2, 3), -100))
    zero.backward()
    assert zero.item() == 0.0


def test_training_lowers_perplexity_and_result_starts_a_classifier(tiny_model, tok, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    cfg = cfg_for(tmp_path / "unused.txt")
    model = mlm.load_model(resolve_model(str(tiny_model)), None, cfg, tok)
    pad = tok.pad_token_id
    train = mlm.featurize(mlm.TextChunks("train", "t", sentences(200, 10), []), tok, 32)
    held = mlm.featurize(mlm.TextChunks("validation", "v", sentences(40, 11), []), tok, 32)
    before = score_mlm_features(model, held, 32, pad)
    assert score_mlm_features(model, held, 32, pad) == before  # same masks, same score

    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    rng = np.random.default_rng(0)
    for _ in range(60):
        batch = mlm.collate(train, rng.choice(len(train), 8, replace=False), pad)
        labels = batch.pop("labels")
        loss = mlm.loss(model(**batch).logits, labels)
        loss.backward()
        opt.step()
        opt.zero_grad()
    after = score_mlm_features(model, held, 32, pad)
    assert after["tokens"] == before["tokens"] > 50
    assert after["perplexity"] < 0.7 * before["perplexity"]
    assert after["masked_accuracy"] > before["masked_accuracy"]

    out = tmp_path / "model"
    model.save_pretrained(out, safe_serialization=True)
    clf = AutoModelForSequenceClassification.from_pretrained(out, num_labels=2)
    q = "encoder.layer.0.attention.self.query.weight"
    adapted = model.bert.state_dict()[q]
    assert torch.equal(clf.bert.state_dict()[q], adapted)
    assert not torch.equal(load_file(tiny_model / "model.safetensors")[q], adapted)
    # the pretrained pooler survives MLM training (BertForMaskedLM alone would drop it)
    base_pooler = load_file(tiny_model / "model.safetensors")["pooler.dense.weight"]
    assert torch.equal(clf.bert.pooler.dense.weight, base_pooler)


def test_packaged_minilm_gets_a_fresh_head_tied_to_its_embeddings(tok):
    model = mlm.load_model(resolve_model("all-minilm-l6-v2"), None, cfg_for(Path("x")), tok)
    head = model.cls.predictions
    assert head.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert model.bert.pooler is not None and model.bert.pooler.dense.weight.shape == (384, 384)
    assert head.transform.dense.weight.shape == (384, 384)
    names = mlm.head_modules(model)  # what LoRA should train fully: the fresh transform
    assert names == ["cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm"]


def test_loop_resume_is_exact_with_collate_time_masking(tiny_model, tok, tmp_path):
    """Masks come from the global RNG, which checkpoints restore: stopping after step 4 and
    resuming gives the very scores of an uninterrupted run (and evaluation masking, on its
    own generator, does not disturb the training masks)."""
    import shutil

    from tunelab.config.schema import TrainConfig
    from tunelab.training.loop import LoopSettings, train_loop

    pad = tok.pad_token_id
    train = mlm.featurize(mlm.TextChunks("train", "t", sentences(100, 4), []), tok, 32)
    held = mlm.featurize(mlm.TextChunks("validation", "v", sentences(30, 5), []), tok, 32)
    cfg = TrainConfig(
        max_steps=8, batch_size=8, lr=1e-3, eval_steps=4, keep_checkpoints=5, precision="fp32"
    )
    settings = LoopSettings(
        lr=1e-3, epochs=1, metric="perplexity", mode="min", pad_id=pad, collate=mlm.collate
    )

    def run(run_dir: Path, resume: bool = False) -> list[dict]:
        run_dir.mkdir(exist_ok=True)
        torch.manual_seed(0)
        model = mlm.load_model(resolve_model(str(tiny_model)), None, cfg_for(run_dir), tok)
        result = train_loop(
            model,
            train,
            cfg,
            settings,
            run_dir,
            mlm.loss,
            lambda m: score_mlm_features(m, held, 16, pad),
            resume=resume,
        )
        return result.evaluations

    full = run(tmp_path / "a")
    assert full[-1]["perplexity"] < full[0]["perplexity"]
    shutil.copytree(
        tmp_path / "a/checkpoints/step-00000004", tmp_path / "b/checkpoints/step-00000004"
    )
    assert run(tmp_path / "b", resume=True)[-1] == full[-1]
