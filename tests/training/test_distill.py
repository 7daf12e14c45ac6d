"""Knowledge distillation: the loss, the teacher-logit cache, students cut from the teacher,
the checks on teacher and student, and a tiny end-to-end distillation."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from conftest import tiny_config

from tunelab import api
from tunelab.config.procedure import DistillProcedure
from tunelab.data.batching import Features, collate
from tunelab.errors import ConfigError
from tunelab.tasks import causal_lm, classification, token_classification
from tunelab.training.procedures.distill import Distill, kd_loss
from tunelab.training.procedures.distill_models import (
    Teacher,
    build_student,
    check_teacher,
    check_vocab,
    layer_stack,
)


def _settings(**kw) -> DistillProcedure:
    return DistillProcedure(name="distill", teacher="unused", **kw)


def _bert_classifier(seed: int, layers: int = 2, labels: int = 3):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=60,
        hidden_size=16,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        num_labels=labels,
        initializer_range=0.5,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return BertForSequenceClassification(config).eval()


def _tiny_llama(seed: int, vocab: int = 50):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).eval()


def _features(n: int = 12, labels: int = 3, seed: int = 0) -> Features:
    rng = np.random.default_rng(seed)
    ids = [list(rng.integers(1, 60, size=int(rng.integers(3, 9)))) for _ in range(n)]
    return Features(
        {"input_ids": ids, "attention_mask": [[1] * len(x) for x in ids]},
        labels=rng.integers(0, labels, size=n),
    )


def _teacher(model, labels=None) -> Teacher:
    return Teacher(model=model, tokenizer=None, labels=labels, folder=None)


def test_kd_loss_matches_the_formula_on_hand_made_logits():
    s = torch.tensor([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]])
    t = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
    T = 2.0

    def softmax(x):
        e = np.exp(np.asarray(x) / T)
        return e / e.sum()

    expected = 0.0
    for si, ti in zip(s.tolist(), t.tolist()):
        p, q = softmax(ti), softmax(si)
        expected += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    expected = T * T * expected / 2  # averaged over the 2 rows
    assert kd_loss(s, t, T).item() == pytest.approx(expected, rel=1e-5)
    assert kd_loss(t, t, T).item() == pytest.approx(0.0, abs=1e-6)


def test_loss_is_alpha_mix_task_loss_at_alpha_1_and_kl_zero_for_identical_models():
    student, teacher = _bert_classifier(0), _bert_classifier(1)
    feats = _features()
    batch = collate(feats, np.arange(6), 0)
    labels = batch.pop("labels")
    rows = np.arange(6)
    task_loss = classification.loss(student(**batch).logits, labels)

    at_1 = Distill(_settings(alpha=1.0), "classification", _teacher(teacher))
    assert at_1.loss(student, batch, labels, classification.loss, None, rows).item() == (
        pytest.approx(task_loss.item(), abs=1e-6)
    )

    mix = Distill(_settings(alpha=0.3, temperature=3.0), "classification", _teacher(teacher))
    kl = kd_loss(student(**batch).logits, teacher(**batch).logits, 3.0)
    got = mix.loss(student, batch, labels, classification.loss, None, rows).item()
    assert kl.item() > 1e-4
    assert got == pytest.approx(0.3 * task_loss.item() + 0.7 * kl.item(), rel=1e-5)

    same = Distill(_settings(alpha=0.0), "classification", _teacher(copy.deepcopy(student)))
    assert same.loss(student, batch, labels, classification.loss, None, rows).item() == (
        pytest.approx(0.0, abs=1e-6)
    )


def test_cached_teacher_logits_give_the_live_loss():
    student, teacher = _bert_classifier(0), _bert_classifier(1)
    feats = _features(n=20)
    live = Distill(_settings(alpha=0.5), "classification", _teacher(teacher), train=feats)
    cached = Distill(
        _settings(alpha=0.5, cache_teacher_logits=True),
        "classification",
        _teacher(teacher),
        train=feats,
    )
    live.setup(student, "cpu")
    cached.setup(student, "cpu")
    assert live.cache is None and cached.cache is not None and len(cached.cache) == 20
    rows = np.array([13, 2, 7, 19, 0])
    batch = collate(feats, rows, 0)
    labels = batch.pop("labels")
    a = live.loss(student, batch, labels, classification.loss, None, rows).item()
    b = cached.loss(student, batch, labels, classification.loss, None, rows).item()
    assert a == pytest.approx(b, rel=1e-5)
    assert cached.summary()["cache_teacher_logits"] is True


def test_causal_lm_kl_only_on_scored_positions_and_cache_matches():
    student, teacher = _tiny_llama(0), _tiny_llama(1)
    ids = [[1, 5, 7, 9, 11, 13], [2, 4, 6, 8]]
    labels = [[-100, -100, 7, 9, 11, 13], [-100, -100, -100, 8]]
    feats = Features(
        {"input_ids": ids, "attention_mask": [[1] * len(x) for x in ids]},
        labels=np.array(labels, dtype=object),
    )
    rows = np.arange(2)
    batch = collate(feats, rows, 0)
    y = batch.pop("labels")
    s, t = student(**batch).logits, teacher(**batch).logits
    mask = y[:, 1:] != -100  # 4 + 1 scored next-token positions
    assert int(mask.sum()) == 5
    expected = kd_loss(s[:, :-1][mask], t[:, :-1][mask], 2.0)
    proc = Distill(_settings(alpha=0.0), "causal-lm", _teacher(teacher), train=feats)
    assert proc.loss(student, batch, y, causal_lm.loss, None, rows).item() == pytest.approx(
        expected.item(), rel=1e-5
    )
    cached = Distill(
        _settings(alpha=0.0, cache_teacher_logits=True), "causal-lm", _teacher(teacher), train=feats
    )
    cached.setup(student, "cpu")
    assert [c.shape[0] for c in cached.cache] == [4, 1]
    got = cached.loss(student, batch, y, causal_lm.loss, None, rows).item()
    assert got == pytest.approx(expected.item(), rel=1e-2)  # cache is fp16


def test_causal_lm_cache_past_the_memory_budget_is_a_clear_error(monkeypatch):
    from tunelab.training.procedures import distill

    ids = [[1, 5, 7, 9]]
    feats = Features(
        {"input_ids": ids, "attention_mask": [[1] * 4]}, labels=np.array([[1, 5, 7, 9]])
    )
    monkeypatch.setattr(distill, "CACHE_BUDGET_BYTES", 100)  # 3 tokens x 50 x 2 bytes = 300
    proc = Distill(
        _settings(alpha=0.5, cache_teacher_logits=True),
        "causal-lm",
        _teacher(_tiny_llama(1)),
        train=feats,
    )
    with pytest.raises(ConfigError, match=r"procedure\.cache_teacher_logits.*3 scored tokens"):
        proc.setup(_tiny_llama(0), "cpu")


def test_teacher_without_the_task_head_is_refused(tiny_model):
    from tunelab.training.procedures.distill_models import load_teacher

    with pytest.raises(ConfigError, match=r"procedure\.teacher.*BertModel.*classification head"):
        load_teacher(str(tiny_model), "classification")
    with pytest.raises(ConfigError, match=r"procedure\.teacher"):
        load_teacher("/no/such/teacher", "classification")


def test_token_classification_kl_on_labelled_tokens_only():
    from transformers import BertConfig, BertForTokenClassification

    def model(seed):
        torch.manual_seed(seed)
        config = BertConfig(
            vocab_size=60,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=32,
            num_labels=4,
            initializer_range=0.5,
        )
        return BertForTokenClassification(config).eval()

    student, teacher = model(0), model(1)
    ids = [[1, 5, 7, 9, 2], [1, 4, 2]]
    labels = [[-100, 0, 3, -100, -100], [-100, 1, -100]]
    feats = Features(
        {"input_ids": ids, "attention_mask": [[1] * len(x) for x in ids]},
        labels=np.array(labels, dtype=object),
    )
    batch = collate(feats, np.arange(2), 0)
    y = batch.pop("labels")
    mask = y != -100
    expected = kd_loss(student(**batch).logits[mask], teacher(**batch).logits[mask], 2.0)
    proc = Distill(_settings(alpha=0.0), "token-classification", _teacher(teacher), train=feats)
    cached = Distill(
        _settings(alpha=0.0, cache_teacher_logits=True),
        "token-classification",
        _teacher(teacher),
        train=feats,
    )
    cached.setup(student, "cpu")
    assert [c.shape[0] for c in cached.cache] == [2, 1]
    for p in (proc, cached):
        got = p.loss(student, batch, y, token_classification.loss, None, np.arange(2)).item()
        assert got == pytest.approx(expected.item(), rel=1e-5) and got > 1e-4


def test_student_layers_keeps_the_teachers_first_k_layers():
    teacher = _bert_classifier(0, layers=3)
    student = build_student(teacher, 2)
    assert student.config.num_hidden_layers == 2
    assert len(layer_stack(student)[1]) == 2 and len(teacher.bert.encoder.layer) == 3
    t_state, s_state = teacher.state_dict(), student.state_dict()
    assert all(not k.startswith("bert.encoder.layer.2.") for k in s_state)
    for key, value in s_state.items():
        assert torch.equal(value, t_state[key]), key
    assert sum(p.numel() for p in student.parameters()) < sum(
        p.numel() for p in teacher.parameters()
    )
    assert all(p.requires_grad for p in student.parameters())
    assert student.bert.encoder.layer[0].attention.self.query.weight.data_ptr() != (
        teacher.bert.encoder.layer[0].attention.self.query.weight.data_ptr()
    )  # a copy: training the student leaves the teacher alone
    llama = build_student(_tiny_llama(0), 1)
    assert llama.config.num_hidden_layers == 1 and len(llama.model.layers) == 1
    with pytest.raises(ConfigError, match="procedure.student_layers"):
        build_student(teacher, 4)


class _Vocab:
    def __init__(self, vocab: dict):
        self.vocab = vocab

    def get_vocab(self) -> dict:
        return self.vocab

    def __len__(self) -> int:
        return len(self.vocab)


def test_mismatched_labels_and_vocabulary_name_procedure_teacher():
    with pytest.raises(ConfigError, match=r"procedure\.teacher.*labels"):
        check_teacher(_teacher(None, ["neg", "pos"]), "classification", ["pos", "neg"], None)
    t = Teacher(None, _Vocab({"a": 0, "b": 1}), ["x"], None)
    other = _Vocab({"a": 0, "c": 1})
    with pytest.raises(ConfigError, match=r"procedure\.teacher.*vocabulary"):
        check_teacher(t, "classification", ["x"], other)
    with pytest.raises(ConfigError, match=r"procedure\.teacher.*50 tokens.*60"):
        check_vocab(_tiny_llama(0, vocab=50), _tiny_llama(0, vocab=60))


def test_tiny_student_distilled_from_a_trained_teacher_learns_and_is_smaller(
    tiny_model, toy_data, tmp_path
):
    teacher = api.train(tiny_config(tiny_model, toy_data, tmp_path / "teacher"))
    assert teacher["test"]["accuracy"] > 0.8
    cfg = tiny_config(
        tiny_model,
        toy_data,
        tmp_path / "student",
        procedure={
            "name": "distill",
            "teacher": str(tmp_path / "teacher"),
            "student_layers": 1,
            "cache_teacher_logits": True,
            "alpha": 0.5,
        },
    )
    student = api.train(cfg)
    report = student["distill"]
    assert student["test"]["accuracy"] > 0.8  # chance is 0.5
    assert student["run"]["procedure"]["cache_teacher_logits"] is True
    assert report["student"]["params"] < report["teacher"]["params"]
    assert 0 < report["student"]["size_mb"] < report["teacher"]["size_mb"]
    assert report["teacher"]["accuracy"] == pytest.approx(teacher["test"]["accuracy"])
    assert (
        report["student"]["latency_ms_batch1"] > 0 and report["student"]["latency_ms_batch32"] > 0
    )
    assert report["kept"]["accuracy"] > 0.85
    # the saved student loads back as a 1-layer model
    from tunelab.methods.loading import load_trained

    assert load_trained(tmp_path / "student").model.config.num_hidden_layers == 1


def test_teacher_with_other_labels_is_refused_before_training(tiny_model, toy_data, tmp_path):
    api.train(tiny_config(tiny_model, toy_data, tmp_path / "teacher", train={"epochs": 1}))
    cfg = tiny_config(
        tiny_model,
        toy_data,
        tmp_path / "student",
        data={"label_names": ["positive", "negative"]},
        procedure={"name": "distill", "teacher": str(tmp_path / "teacher")},
    )
    with pytest.raises(ConfigError, match=r"procedure\.teacher.*labels"):
        api.train(cfg)
