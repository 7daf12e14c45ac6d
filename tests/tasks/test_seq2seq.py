"""seq2seq task: reading and bad data, label/decoder-input layout, length limits, the loss
against the model's own, a tiny BART learning to reverse word lists (beating the untrained
base, reloading and generating the same), LoRA save/load, the BERT2BERT warm start, and a run
on real Multi30k rows."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import SHARED_DATASETS, minilm_dir, tiny_bart_model, word_tokenizer, write_jsonl

from tunelab import api
from tunelab.config.schema import DataConfig, RunConfig
from tunelab.errors import ConfigError, DataError
from tunelab.evaluation.scoring.seq2seq import generate_texts
from tunelab.methods.loading import load_trained
from tunelab.tasks import seq2seq

WORDS = "red blue green cat dog bird one two three house tree river".split()


def reversal_rows(n: int, seed: int) -> list[dict]:
    """Word lists and the same words reversed."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(2, 5))]
        rows.append({"text": " ".join(words), "target": " ".join(reversed(words))})
    return rows


@pytest.fixture(scope="module")
def word_tok():
    return word_tokenizer(WORDS)


@pytest.fixture(scope="module")
def tiny_bart(tmp_path_factory, word_tok):
    out = tmp_path_factory.mktemp("tiny-bart")
    tiny_bart_model(len(word_tok)).save_pretrained(out, safe_serialization=True)
    word_tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("reversal")
    return {
        "train": write_jsonl(root / "train.jsonl", reversal_rows(320, 1)),
        "validation": write_jsonl(root / "validation.jsonl", reversal_rows(40, 2)),
    }


@pytest.fixture(scope="module")
def minilm_tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_dir())


def run_cfg(model, files, output, **sections) -> dict:
    cfg = {
        "model": str(model),
        "task": "seq2seq",
        "data": {"train": str(files["train"]), "validation": str(files["validation"])},
        "method": {"name": "full"},
        # Toy rows have 4 lengths, so length-grouped batches would each hold one length, and
        # the tiny model then learns reversal far less reliably: mix lengths instead.
        "train": {
            "epochs": 12,
            "batch_size": 16,
            "lr": 5e-3,
            "seed": 0,
            "log_steps": 5,
            "group_by_length": False,
        },
        "output": str(output),
    }
    for key, value in sections.items():
        cfg.setdefault(key, {}).update(value)
    return cfg


def split_of(tmp_path, rows, **data):
    path = write_jsonl(tmp_path / "rows.jsonl", rows)
    return seq2seq.read_split("train", str(path), DataConfig(train=str(path), **data))


# --- data ------------------------------------------------------------------------------


def test_bad_data_names_file_row_and_column(tmp_path):
    with pytest.raises(DataError, match=r"rows\.jsonl.*column 'target' not found"):
        split_of(tmp_path, [{"text": "a", "summary": "b"}])
    with pytest.raises(DataError, match=r"rows\.jsonl, row 2, column 'target'.*empty text"):
        split_of(tmp_path, [{"text": "a", "target": "b"}, {"text": "c", "target": "  "}])
    with pytest.raises(DataError, match=r"column 'refs'.*list of reference texts"):
        split_of(tmp_path, [{"text": "a", "target": "b", "refs": 3}], references="refs")


def test_references_column_falls_back_to_the_target(tmp_path):
    rows = [
        {"text": "a", "target": "b", "refs": ["b", "bee", " "]},
        {"text": "c", "target": "d", "refs": []},
    ]
    split = split_of(tmp_path, rows, references="refs")
    assert split.references == [["b", "bee"], ["d"]]
    assert split_of(tmp_path, rows).references == [["b"], ["d"]]


def test_bert_style_labels_padding_and_shifted_decoder_inputs(tmp_path, minilm_tok):
    split = split_of(
        tmp_path, [{"text": "hello world", "target": "a b c"}, {"text": "x", "target": "d"}]
    )
    feats = seq2seq.featurize(split, minilm_tok, 32)
    cls, sep = minilm_tok.cls_token_id, minilm_tok.sep_token_id
    # labels: the target and [SEP]; no leading [CLS] (the decoder starts from it)
    assert list(feats.labels[0]) == minilm_tok.convert_tokens_to_ids(["a", "b", "c"]) + [sep]
    assert feats.columns["input_ids"][0][0] == cls  # the source keeps its [CLS] ... [SEP]
    batch = seq2seq.collate(feats, np.array([0, 1]), 0, decoder_start=cls)
    labels, dec = batch["labels"].tolist(), batch["decoder_input_ids"].tolist()
    assert labels[1] == [feats.labels[1][0], sep, -100, -100]  # label padding is -100
    assert dec[0] == [cls] + labels[0][:-1]
    assert dec[1] == [cls, labels[1][0], sep, 0]  # shifted right; padding is pad_id, not -100
    assert batch["attention_mask"].tolist()[1] == [1, 1, 1, 0]


def test_t5_style_labels_and_prefix(tmp_path, word_tok):
    split = split_of(tmp_path, [{"text": "cat", "target": "dog bird"}], prefix="red ")
    feats = seq2seq.featurize(split, word_tok, 16)
    assert word_tok.convert_ids_to_tokens(feats.labels[0]) == ["dog", "bird", "</s>"]
    assert word_tok.convert_ids_to_tokens(feats.columns["input_ids"][0]) == ["red", "cat", "</s>"]


def test_too_long_rows_truncated_with_a_count_or_dropped(tmp_path, word_tok, capsys):
    rows = [
        {"text": "cat dog bird", "target": "one"},
        {"text": "cat", "target": "one two three house"},
        {"text": "cat", "target": "one"},
    ]
    split = split_of(tmp_path, rows, max_target_length=3)
    feats = seq2seq.featurize(split, word_tok, 3)
    assert "2 of 3 rows are longer" in capsys.readouterr().out
    assert [len(x) for x in feats.columns["input_ids"]] == [3, 2, 2]
    assert word_tok.convert_ids_to_tokens(feats.labels[1]) == ["one", "two", "</s>"]  # ends in EOS
    dropped = split_of(tmp_path, rows, max_target_length=3, too_long="drop")
    assert len(seq2seq.featurize(dropped, word_tok, 3)) == 1
    assert "2 dropped" in capsys.readouterr().out
    dropped.name = "validation"  # evaluation rows are never dropped
    assert len(seq2seq.featurize(dropped, word_tok, 3)) == 3


def test_target_limit_chosen_from_training_targets(tmp_path, word_tok, capsys):
    rows = [{"text": "cat", "target": " ".join(["dog"] * n)} for n in range(1, 41)]
    path = write_jsonl(tmp_path / "t.jsonl", rows)
    cfg = SimpleNamespace(
        data=DataConfig(train=str(path)),
        train=SimpleNamespace(seed=0),
        eval=SimpleNamespace(generate_rows=5),
        generation=RunConfig.model_fields["generation"].default,
    )
    data = seq2seq.load_data(cfg)
    assert data.validation_from_train and len(data.splits["validation"]) == 4
    feats = seq2seq.featurize(data.splits["validation"], word_tok, 8)
    # the 99th percentile of the training targets' tokens (words + </s>), up to a multiple of 8
    p99 = int(np.percentile([len(t.split()) + 1 for t in data.splits["train"].targets], 99))
    assert feats.target_limit == -(-p99 // 8) * 8 != 8
    assert f"default data.max_target_length = {feats.target_limit}" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["bart", "warm-start"])
def test_loss_equals_the_models_own_loss(tmp_path, tiny_bart, tiny_model, toy, kind):
    """Our decoder inputs and loss agree with the model shifting the labels itself (BART:
    start </s>, labels end in </s>; BERT2BERT: start [CLS], labels end in [SEP])."""
    from tunelab.models.loading import load_tokenizer
    from tunelab.models.sources import resolve_model

    source = resolve_model(str(tiny_bart if kind == "bart" else tiny_model))
    tok = load_tokenizer(source)
    cfg = RunConfig.model_validate(run_cfg(source.path, toy, tmp_path))
    data = seq2seq.load_data(cfg)
    model = seq2seq.load_model(source, data, cfg, tok).eval()
    feats = seq2seq.featurize(data.splits["validation"], tok, 16)
    batch = seq2seq.collate(feats, np.arange(8), tok.pad_token_id)
    labels = batch.pop("labels")
    with torch.no_grad():
        ours = seq2seq.loss(model(**batch).logits, labels)
        theirs = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels
        ).loss
    assert float(ours) == pytest.approx(float(theirs), rel=1e-5)


# --- training runs ---------------------------------------------------------------------


def test_bart_learns_reversal_beats_base_and_reloads(tmp_path, tiny_bart, toy):
    results = api.train(run_cfg(tiny_bart, toy, tmp_path / "run"))
    val, base = results["validation"], results["baselines"]["base_model"]["validation"]
    assert val["loss"] < base["loss"] - 2.0
    assert val["exact_match"] > base["exact_match"] + 30
    assert val["bleu"] > base["bleu"] + 20 and val["rougeL"] > base["rougeL"]
    assert val["generated_rows"] == 40 and len(val["samples"]) == 5
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["baselines"]["base_model"]["validation"]["samples"]
    assert "<html" in (tmp_path / "run" / "report.html").read_text()
    # the saved model loads back (transformers auto class) and generates the same outputs
    trained = load_trained(tmp_path / "run")
    assert type(trained.model).__name__ == "BartForConditionalGeneration"
    out = generate_texts(trained.model, trained.tokenizer, ["red cat dog", "one two three house"])
    assert out == ["dog cat red", "house three two one"]
    again = api.evaluate(tmp_path / "run", toy["validation"], split="validation")["validation"]
    assert [s["prediction"] for s in again["samples"]] == [s["prediction"] for s in val["samples"]]
    assert again["loss"] == pytest.approx(val["loss"], rel=1e-4)


def test_lora_trains_and_both_saved_forms_load(tmp_path, tiny_bart, toy):
    cfg = run_cfg(tiny_bart, toy, tmp_path / "run", method={"name": "lora", "r": 8})
    cfg["train"].update(epochs=2, lr=2e-2)
    results = api.train(cfg)
    assert results["validation"]["loss"] < results["baselines"]["base_model"]["validation"]["loss"]
    merged = api.evaluate(tmp_path / "run", toy["validation"], split="v")["v"]
    adapter = api.evaluate(tmp_path / "run" / "adapter", toy["validation"], split="v")["v"]
    assert merged["loss"] == pytest.approx(results["validation"]["loss"], rel=1e-4)
    assert adapter["loss"] == pytest.approx(merged["loss"], rel=1e-4)


@pytest.mark.parametrize("method", ["full", "lora"])
def test_warm_start_from_an_encoder(tmp_path, tiny_model, capsys, method):
    """An encoder-only checkpoint becomes a BERT2BERT encoder-decoder that learns to use its
    source and reloads; under LoRA its new cross-attention trains fully, and the adapter alone
    loads back."""
    rows = reversal_rows(352, 3)
    n = {"full": 320, "lora": 128}[method]  # LoRA checks the mechanics only: fewer steps
    dev = rows[-32:]
    files = {
        "train": write_jsonl(tmp_path / "train.jsonl", rows[:n]),
        "validation": write_jsonl(tmp_path / "dev.jsonl", dev),
    }
    cfg = run_cfg(
        tiny_model,
        files,
        tmp_path / "run",
        train={
            "epochs": 4 if method == "full" else 3,
            "lr": 5e-3 if method == "full" else 1e-2,
            "dropout": 0.0,
        },
        method={"name": method, "merge": False},
    )
    cfg["eval"] = {"generate_rows": 8}
    results = api.train(cfg)
    assert "warm-starting an encoder-decoder" in capsys.readouterr().out
    assert (
        results["validation"]["loss"] < results["baselines"]["base_model"]["validation"]["loss"] - 1
    )
    trained = load_trained(tmp_path / "run")
    model, tok = trained.model, trained.tokenizer
    if method == "lora":  # model/ is the adapter alone, on a warm start rebuilt from the base
        from safetensors import safe_open

        with safe_open(tmp_path / "run" / "model" / "adapter_model.safetensors", "pt") as f:
            saved = " ".join(f.keys())
        assert "crossattention.self.query.weight" in saved  # the new layers, whole
        assert "cls.predictions.transform.dense.weight" in saved
        model = model.get_base_model()
    assert type(model).__name__ == "EncoderDecoderModel"
    assert model.config.decoder.add_cross_attention and model.config.decoder.is_decoder
    assert model.config.decoder_start_token_id == tok.cls_token_id
    assert model.config.eos_token_id == tok.sep_token_id
    again = api.evaluate(tmp_path / "run", files["validation"], split="v")["v"]
    preds = [s["prediction"] for s in results["validation"]["samples"]]
    assert [s["prediction"] for s in again["samples"]] == preds
    # the decoder reads the source: the same targets behind other rows' sources score worse
    wrong = [{**r, "text": dev[(i + 1) % len(dev)]["text"]} for i, r in enumerate(dev)]
    path = write_jsonl(tmp_path / "wrong.jsonl", wrong)
    if method == "full":  # (measured: 2.2 vs 2.8 nats per token)
        assert api.evaluate(tmp_path / "run", path, split="v")["v"]["loss"] > again["loss"] + 0.25


def test_decoder_only_model_is_refused(tmp_path, minilm_tok, toy):
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path / "gpt"
    GPT2LMHeadModel(
        GPT2Config(vocab_size=minilm_tok.vocab_size, n_embd=16, n_layer=1, n_head=2)
    ).save_pretrained(folder)
    minilm_tok.save_pretrained(folder)
    with pytest.raises(ConfigError, match="decoder-only.*causal-lm"):
        api.train(run_cfg(folder, toy, tmp_path / "run"))


def test_real_translation_rows(tmp_path, tiny_model):
    """48 Multi30k pairs through the whole run: BLEU/ROUGE and the base model in results.json."""
    src = SHARED_DATASETS / "translation"
    if not (src / "train.jsonl").is_file():
        pytest.skip("../shared/datasets is not beside the repo")

    def head(name: str, n: int) -> list[dict]:
        return [json.loads(x) for x in (src / name).read_text().splitlines()[:n]]

    files = {
        "train": write_jsonl(tmp_path / "train.jsonl", head("train.jsonl", 48)),
        "validation": write_jsonl(tmp_path / "dev.jsonl", head("validation.jsonl", 12)),
    }
    cfg = run_cfg(tiny_model, files, tmp_path / "run", train={"epochs": 2, "lr": 3e-3})
    cfg["data"].update(text="src", target="tgt")
    cfg["generation"] = {"max_new_tokens": 12}
    results = api.train(cfg)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    for scores in (saved["validation"], saved["baselines"]["base_model"]["validation"]):
        assert {"bleu", "chrf", "rouge1", "rougeL", "exact_match", "token_f1"} <= set(scores)
        assert scores["generated_rows"] == 12
    assert results["validation"]["loss"] < saved["baselines"]["base_model"]["validation"]["loss"]
    assert (
        json.loads((tmp_path / "run" / "model" / "tunelab.json").read_text())["columns"]["target"]
        == "tgt"
    )


@pytest.mark.e2e
def test_minilm_warm_start_learns(tmp_path):
    """The packaged MiniLM as a BERT2BERT: a few steps on toy reversal lower the target loss."""
    rows = reversal_rows(72, 5)
    files = {
        "train": write_jsonl(tmp_path / "train.jsonl", rows[:64]),
        "validation": write_jsonl(tmp_path / "dev.jsonl", rows[64:]),
    }
    cfg = run_cfg(
        "all-minilm-l6-v2",
        files,
        tmp_path / "run",
        train={"max_steps": 8, "lr": 1e-4, "batch_size": 8},
    )
    cfg["eval"] = {"generate_rows": 4}
    cfg["generation"] = {"max_new_tokens": 8}
    results = api.train(cfg)
    assert (
        results["validation"]["loss"] < results["baselines"]["base_model"]["validation"]["loss"] - 1
    )
