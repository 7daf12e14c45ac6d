"""Adversarial training: FGM/PGD perturbations of the input embeddings (size, direction, ball),
training still learns under full / freeze / LoRA, unsupported tasks are refused."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from conftest import tiny_config, toy_rows

from tunelab import api
from tunelab.errors import ConfigError
from tunelab.tasks import classification as task
from tunelab.training.procedures.adversarial import Adversarial, build


@pytest.fixture(scope="module")
def tiny_classifier(tiny_model):
    """The tiny BERT with a 2-class head, a little trained so its gradients are not noise."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2)
    tok = AutoTokenizer.from_pretrained(tiny_model)
    rows = toy_rows(32, seed=5)
    enc = tok([r["text"] for r in rows], padding=True, return_tensors="pt")
    batch = dict(enc)
    labels = torch.tensor([int(r["label"] == "positive") for r in rows])
    model.eval()  # no dropout: losses compare exactly
    return model, batch, labels


def _loss_at(model, batch, labels, delta=None) -> torch.Tensor:
    """Per-batch loss with `delta` added to the word embeddings."""
    emb = model.get_input_embeddings()(batch["input_ids"])
    if delta is not None:
        emb = emb + delta
    with torch.no_grad():
        return task.loss(Adversarial._forward(model, batch, emb), labels)


def _delta(model, batch, labels, **kw) -> torch.Tensor:
    proc = Adversarial(**kw)
    model.zero_grad()
    loss = proc.loss(model, batch, labels, task.loss, None, None)
    loss.backward()
    return proc.perturbation(model, batch, labels, task.loss, None, proc._emb.grad)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_fgm_has_norm_epsilon_and_raises_loss(tiny_classifier, norm):
    model, batch, labels = tiny_classifier
    delta = _delta(model, batch, labels, attack="fgm", epsilon=0.5, norm=norm)
    mask = batch["attention_mask"].bool()
    assert delta[~mask].abs().max() == 0  # pads never perturbed
    flat = delta.flatten(1)
    sizes = flat.norm(dim=1) if norm == "l2" else flat.abs().amax(dim=1)
    assert torch.allclose(sizes, torch.full_like(sizes, 0.5), atol=1e-5)
    clean = _loss_at(model, batch, labels)
    assert _loss_at(model, batch, labels, delta) > clean + 1e-3
    # a random direction of the same size raises it far less
    noise = torch.randn_like(delta) * mask.unsqueeze(-1)
    noise = noise / noise.flatten(1).norm(dim=1).view(-1, 1, 1) * 0.5
    assert (
        _loss_at(model, batch, labels, noise) - clean
        < (_loss_at(model, batch, labels, delta) - clean) / 2
    )


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_pgd_stays_in_ball_and_beats_fgm(tiny_classifier, norm):
    model, batch, labels = tiny_classifier
    eps = 0.5
    fgm = _delta(model, batch, labels, attack="fgm", epsilon=eps, norm=norm)
    pgd = _delta(model, batch, labels, attack="pgd", epsilon=eps, norm=norm, steps=5)
    flat = pgd.flatten(1)
    sizes = flat.norm(dim=1) if norm == "l2" else flat.abs().amax(dim=1)
    assert sizes.max() <= eps + 1e-5
    assert _loss_at(model, batch, labels, pgd) >= _loss_at(model, batch, labels, fgm) - 1e-4
    assert not torch.equal(pgd, fgm)


def test_pgd_leaves_weight_grads_to_the_final_backward(tiny_classifier):
    """The ascent steps differentiate w.r.t. delta only; the weights' gradient after
    after_backward is clean + weight * adversarial, nothing more."""
    model, batch, labels = tiny_classifier
    proc = Adversarial(attack="pgd", epsilon=0.5, steps=3, weight=0.0)
    model.zero_grad()
    proc.loss(model, batch, labels, task.loss, None, None).backward()
    before = model.classifier.weight.grad.clone()
    proc.after_backward(model, batch, labels, task.loss, None, 1.0, lambda x: x.backward())
    assert torch.equal(model.classifier.weight.grad, before)  # weight 0: no extra gradient


@pytest.mark.parametrize(
    "procedure",
    [{"attack": "fgm", "epsilon": 0.01}, {"attack": "pgd", "norm": "linf", "epsilon": 0.001}],
)
def test_adversarial_training_still_learns(tiny_model, toy_data, tmp_path, procedure):
    # the tiny model's embeddings are ~0.1 per token (random init, std 0.02): epsilon is small
    cfg = tiny_config(
        tiny_model,
        toy_data,
        tmp_path / "run",
        procedure={"name": "adversarial", **procedure},
        eval={"baselines": ["majority"]},
    )
    results = api.train(cfg)
    majority = results["baselines"]["majority"]["test"]["accuracy"]
    assert results["test"]["accuracy"] > majority + 0.2
    summary = results["run"]["procedure"]
    assert summary["name"] == "adversarial" and summary["attack"] == procedure["attack"]
    assert summary["mean_adversarial_loss"] > summary["mean_clean_loss"]


@pytest.mark.parametrize(
    "method", [{"name": "lora", "r": 4, "merge": False}, {"name": "freeze", "train_layers": 1}]
)
def test_adversarial_with_frozen_embeddings(tiny_model, toy_data, tmp_path, method):
    """Under LoRA and freeze the embedding matrix is frozen, yet the perturbation (from the
    gradient w.r.t. the embedding output) raises the loss, and what should train trains."""
    from safetensors.torch import load_file

    cfg = tiny_config(
        tiny_model,
        toy_data,
        tmp_path / "run",
        method=method,
        procedure={"name": "adversarial", "attack": "pgd", "epsilon": 0.05, "steps": 2},
        train={"lr": 1e-2, "epochs": 1},
    )
    results = api.train(cfg)
    summary = results["run"]["procedure"]
    assert summary["mean_adversarial_loss"] > summary["mean_clean_loss"]
    model_dir = tmp_path / "run" / "model"
    if method["name"] == "lora":
        adapter = load_file(str(model_dir / "adapter_model.safetensors"))
        lora_b = [t for k, t in adapter.items() if "lora_B" in k]
        assert lora_b and all(t.abs().sum() > 0 for t in lora_b)
        assert not any("word_embeddings" in k for k in adapter)  # the matrix never trained
    else:
        before = load_file(str(tiny_model / "model.safetensors"))
        after = load_file(str(model_dir / "model.safetensors"))
        key = next(k for k in after if k.endswith("word_embeddings.weight"))
        base_key = next(k for k in before if k.endswith("word_embeddings.weight"))
        assert torch.equal(after[key], before[base_key])
        top = next(k for k in after if "layer.1.output.dense.weight" in k)
        assert not torch.equal(after[top], before[top.removeprefix("bert.")])


def test_other_tasks_are_refused():
    ctx = SimpleNamespace(
        cfg=SimpleNamespace(task="causal-lm", procedure=None), model=None, task=None
    )
    with pytest.raises(ConfigError, match="procedure.name.*causal-lm"):
        build(ctx)


def test_token_classification_fgm_raises_the_tagging_loss(tiny_model):
    """Token classification: the same perturbation on a (B, T, C) tagging loss with -100s."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from tunelab.tasks import token_classification as tagging

    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(tiny_model, num_labels=3).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model)
    batch = dict(
        tok(["anna went to paris .", "bob lives in rome"], padding=True, return_tensors="pt")
    )
    labels = torch.randint(0, 3, batch["input_ids"].shape)
    labels[batch["attention_mask"] == 0] = tagging.IGNORE
    proc = Adversarial(attack="fgm", epsilon=0.5)
    proc.loss(model, batch, labels, tagging.loss, None, None).backward()
    delta = proc.perturbation(model, batch, labels, tagging.loss, None, proc._emb.grad)
    assert torch.allclose(delta.flatten(1).norm(dim=1), torch.tensor([0.5, 0.5]), atol=1e-5)
    emb = model.get_input_embeddings()(batch["input_ids"])
    with torch.no_grad():
        clean = tagging.loss(Adversarial._forward(model, batch, emb), labels)
        adv = tagging.loss(Adversarial._forward(model, batch, emb + delta), labels)
    assert adv > clean + 1e-3
