"""Continual learning: replay mixes the asked share of earlier rows, the L2/EWC penalty holds
the weights near the start, the Fisher is large where the old task's gradients are, the
forgetting check scores the earlier held-out file, and on a toy two-phase problem replay and
EWC keep the old task where plain fine-tuning forgets it."""

from __future__ import annotations

import json
import random

import pytest
import torch
from conftest import FILLER, NEG, POS, tiny_config, toy_rows, write_jsonl
from safetensors.torch import load_file

from tunelab import api
from tunelab.config.load import validate_config
from tunelab.errors import DataError
from tunelab.runs.continual import continual_setup
from tunelab.tasks import get_task

ANIMALS = ["cat", "dog", "horse", "cow", "bird", "fish"]
TOOLS = ["hammer", "saw", "drill", "wrench", "knife", "axe"]


def task_b_rows(n: int, seed: int) -> list[dict]:
    """Task B: the label is the topic (tools vs animals); a sentiment word is in every row
    but says nothing about the label, so B alone teaches the model to ignore sentiment."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        y = rng.random() < 0.5
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 10))]
        for _ in range(2):
            words.insert(rng.randint(0, len(words)), rng.choice(TOOLS if y else ANIMALS))
        words.insert(rng.randint(0, len(words)), rng.choice(POS if rng.random() < 0.5 else NEG))
        rows.append({"text": " ".join(words), "label": ["negative", "positive"][int(y)]})
    return rows


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("continual")
    return {
        "a_train": write_jsonl(root / "a_train.jsonl", toy_rows(320, seed=1)),
        "a_val": write_jsonl(root / "a_val.jsonl", toy_rows(80, seed=2)),
        "b_train": write_jsonl(root / "b_train.jsonl", task_b_rows(128, seed=3)),
        "b_val": write_jsonl(root / "b_val.jsonl", task_b_rows(80, seed=4)),
    }


@pytest.fixture(scope="module")
def phase_a(tiny_model, files, tmp_path_factory):
    """The tiny model fine-tuned on task A (sentiment); its run dir is phase B's model."""
    out = tmp_path_factory.mktemp("phase-a") / "run"
    data = {"train": files["a_train"], "validation": files["a_val"]}
    results = api.train(tiny_config(tiny_model, data, out))
    assert results["validation"]["accuracy"] >= 0.95
    return out


def phase_b(phase_a, files, out, **procedure) -> dict:
    data = {"train": files["b_train"], "validation": files["b_val"]}
    proc = {"name": "continual", "old_validation": str(files["a_val"]), **procedure}
    cfg = tiny_config(phase_a, data, out, procedure=proc, train={"epochs": 5, "lr": 5e-3})
    return api.train(cfg)


@pytest.fixture(scope="module")
def two_phase(phase_a, files, tmp_path_factory):
    root = tmp_path_factory.mktemp("phase-b")
    a_train = str(files["a_train"])
    variants = {
        "plain": {},
        "replay": {"replay": a_train, "replay_ratio": 0.3},
        "ewc": {"replay": a_train, "replay_ratio": 0, "penalty": "ewc", "fisher_rows": 64},
        "l2_huge": {"penalty": "l2", "penalty_weight": 1000.0},
    }
    return {
        name: (root / name, phase_b(phase_a, files, root / name, **p))
        for name, p in variants.items()
    }


def _cfg(phase_a, files, out, **procedure):
    data = {"train": files["b_train"], "validation": files["b_val"]}
    return validate_config(
        tiny_config(phase_a, data, out, procedure={"name": "continual", **procedure})
    )


def test_replay_mixes_the_asked_share_of_earlier_rows(phase_a, files, tmp_path):
    cfg = _cfg(phase_a, files, tmp_path / "r", replay=str(files["a_train"]), replay_ratio=0.25)
    task = get_task("classification")
    data, check = continual_setup(cfg, task, task.load_data(cfg))
    train = data.splits["train"]
    assert check is None and len(train) == 128 + 43  # 43 / 171 = 25%
    a_rows = {r["text"]: r["label"] for r in toy_rows(320, seed=1)}
    b_texts = {r["text"] for r in task_b_rows(128, seed=3)}
    replayed = train.texts[128:]
    assert all(t in a_rows for t in replayed) and not any(t in b_texts for t in replayed)
    assert len(set(replayed)) == 43  # a sample without repeats when the file is large enough
    names = data.labels.names
    assert [names[i] for i in train.y[128:]] == [a_rows[t] for t in replayed]
    assert data.replay["share"] == pytest.approx(0.25, abs=0.01)

    short = write_jsonl(tmp_path / "short.jsonl", toy_rows(10, seed=5))
    cfg = _cfg(phase_a, files, tmp_path / "s", replay=str(short), replay_ratio=0.5)
    data, _ = continual_setup(cfg, task, task.load_data(cfg))
    assert len(data.splits["train"]) == 256 and data.replay["repeated"]


def test_bad_replay_file_is_a_clear_data_error(phase_a, files, tmp_path):
    no_label = write_jsonl(tmp_path / "nolabel.jsonl", [{"text": "good film"}])
    with pytest.raises(DataError, match=r"nolabel\.jsonl.*column 'label'"):
        api.train(_cfg(phase_a, files, tmp_path / "a", replay=str(no_label)))
    rows = toy_rows(5, seed=6)
    rows[2]["label"] = "neutral"
    odd = write_jsonl(tmp_path / "odd.jsonl", rows)
    with pytest.raises(DataError, match=r"odd\.jsonl, row 3, column 'label'.*neutral"):
        api.train(_cfg(phase_a, files, tmp_path / "b", replay=str(odd)))
    with pytest.raises(DataError, match=r"missing\.jsonl.*not found"):
        api.train(
            _cfg(phase_a, files, tmp_path / "c", old_validation=str(tmp_path / "missing.jsonl"))
        )
    assert not (tmp_path / "a").exists()  # failed before anything was written


def test_penalty_is_zero_at_the_start_and_l2_or_ewc_weights_are_right(phase_a, files, tmp_path):
    from tunelab.models.loading import load_tokenizer
    from tunelab.models.sources import resolve_model
    from tunelab.training.procedures import ProcedureContext
    from tunelab.training.procedures.continual import build

    cfg = _cfg(
        phase_a, files, tmp_path / "e", replay=str(files["a_train"]), penalty="ewc", fisher_rows=48
    )
    task = get_task("classification")
    data = task.load_data(cfg)
    source = resolve_model(str(phase_a))  # a run dir loads as its model/
    tokenizer = load_tokenizer(source)
    model = task.load_model(source, data, cfg, tokenizer)
    proc = build(ProcedureContext(cfg, task, data, {}, tokenizer, model))
    assert proc.penalty().item() == 0.0

    fisher = dict(zip([n for n, p in model.named_parameters() if p.requires_grad], proc.fisher))
    flat = torch.cat([f.flatten() for f in fisher.values()])
    assert flat.min() >= 0 and flat.mean().item() == pytest.approx(1.0, rel=1e-4)
    emb = fisher["bert.embeddings.word_embeddings.weight"]  # (V, H)
    vocab = tokenizer.get_vocab()
    seen = [vocab[w] for w in POS + NEG + FILLER if w in vocab]
    unseen = [vocab[w] for w in ANIMALS + TOOLS if w in vocab]  # never in task A's rows
    assert len(seen) > 20 and len(unseen) > 8
    assert emb[seen].sum(-1).min() > 0 and emb[unseen].abs().max() == 0
    assert fisher["classifier.weight"].sum() > 0  # the head matters

    params = dict(model.named_parameters())
    with torch.no_grad():
        params["classifier.bias"][0] += 0.5
    expected = 0.25 * fisher["classifier.bias"][0].item()
    assert proc.penalty().item() == pytest.approx(expected, rel=1e-4)


def _distance(run_a, run_b) -> float:
    a = load_file(run_a / "model" / "model.safetensors")
    b = load_file(run_b / "model" / "model.safetensors")
    return sum(((a[k].float() - b[k].float()) ** 2).sum().item() for k in a if k in b)


def test_l2_penalty_keeps_the_weights_near_the_start(phase_a, two_phase):
    plain_dir, _ = two_phase["plain"]
    l2_dir, l2 = two_phase["l2_huge"]
    assert l2["run"]["procedure"]["penalty_first"] == 0.0
    assert _distance(phase_a, l2_dir) < 0.05 * _distance(phase_a, plain_dir)


def test_forgetting_check_scores_the_old_file_before_and_after(phase_a, files, two_phase):
    run_dir, results = two_phase["plain"]
    f = results["forgetting"]
    phase_a_results = json.loads((phase_a / "results.json").read_text())
    assert f["rows"] == 80 and f["file"] == str(files["a_val"])
    assert f["before"]["accuracy"] == pytest.approx(phase_a_results["validation"]["accuracy"])
    after = api.evaluate(run_dir, files["a_val"])["test"]
    assert f["after"]["accuracy"] == pytest.approx(after["accuracy"])
    assert f["drop"]["accuracy"] == pytest.approx(f["before"]["accuracy"] - f["after"]["accuracy"])


def test_replay_and_ewc_keep_the_old_task_that_plain_fine_tuning_forgets(two_phase):
    old = {n: r["forgetting"]["after"]["accuracy"] for n, (_, r) in two_phase.items()}
    new = {n: r["validation"]["accuracy"] for n, (_, r) in two_phase.items()}
    assert two_phase["plain"][1]["forgetting"]["before"]["accuracy"] >= 0.95
    assert old["plain"] <= 0.7 and new["plain"] >= 0.9  # learned B, forgot A
    assert old["replay"] >= old["plain"] + 0.25 and new["replay"] >= 0.9
    assert old["ewc"] >= old["plain"] + 0.25 and new["ewc"] > 0.6  # B learned, if less well
