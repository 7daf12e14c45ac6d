"""The reference: the run's texts embedded and predicted as serving does, cached beside the
model and reloaded equal, recomputed when the model changes."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from monitor_run_helpers import train_tiny_run

from tunelab.errors import TunelabError
from tunelab.monitor import reference as reference_mod
from tunelab.monitor.reference import CACHE_JSON, CACHE_NPZ, load_reference


@pytest.fixture(scope="module")
def run_dir(tiny_model, toy_data, tmp_path_factory):
    return train_tiny_run(tiny_model, toy_data, tmp_path_factory.mktemp("ref-run"))


@pytest.fixture(scope="module")
def ref(run_dir):
    return load_reference(run_dir)


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_shapes_labels_and_probabilities(ref, toy_data):
    n_train, n_val = len(_rows(toy_data["train"])), len(_rows(toy_data["validation"]))
    assert ref.model == "clf" and ref.kind == "classify" and ref.task == "classification"
    assert ref.embeddings.shape == (n_train + n_val, 64)
    assert ref.embeddings.dtype == np.float32 and np.isfinite(ref.embeddings).all()
    assert ref.n_tokens.shape == ref.n_unk.shape == (n_train + n_val,)
    assert (ref.n_tokens > 2).all() and (ref.n_unk >= 0).all()
    assert sorted(ref.labels) == sorted({r["label"] for r in _rows(toy_data["train"])})
    assert ref.val_probs.shape == (n_val, len(ref.labels))
    np.testing.assert_allclose(ref.val_probs.sum(axis=1), 1.0, atol=1e-5)
    assert (ref.pred_labels == ref.val_probs.argmax(axis=1)).all()
    truth = [ref.labels.index(r["label"]) for r in _rows(toy_data["validation"])]
    assert ref.val_labels.tolist() == truth
    assert ref.generation is None
    assert abs(sum(ref.languages.values()) - 1.0) < 1e-6


def test_embeddings_are_the_served_forward_pass(ref, run_dir, toy_data):
    """A validation text predicted alone (as one served request) lands on its reference row."""
    from tunelab.inference.forward import predict_texts
    from tunelab.methods.loading import load_trained

    trained = load_trained(run_dir)
    val = _rows(toy_data["validation"])
    served = predict_texts(trained, [val[3]["text"]], embed=True)[0]
    row = len(ref.embeddings) - len(val) + 3
    np.testing.assert_allclose(served["embedding"], ref.embeddings[row], atol=1e-4)
    assert served["n_tokens"] == ref.n_tokens[row]
    np.testing.assert_allclose(
        [served["scores"][n] for n in ref.labels], ref.val_probs[3], atol=1e-4
    )


def test_cached_and_reloaded_equal(ref, run_dir, monkeypatch):
    model_dir = run_dir / "model"
    assert (model_dir / CACHE_NPZ).is_file() and (model_dir / CACHE_JSON).is_file()

    def no_compute(path):
        raise AssertionError("recomputed although the cache is fresh")

    monkeypatch.setattr(reference_mod, "compute_reference", no_compute)
    again = load_reference(model_dir)
    for field in ("model", "task", "kind", "labels", "languages", "generation"):
        assert getattr(again, field) == getattr(ref, field)
    for field in ("embeddings", "n_tokens", "n_unk", "pred_labels", "val_probs", "val_labels"):
        np.testing.assert_array_equal(getattr(again, field), getattr(ref, field))


def test_recomputed_when_the_model_is_newer(ref, run_dir, monkeypatch):
    model_dir = run_dir / "model"
    cache_time = (model_dir / CACHE_NPZ).stat().st_mtime
    weights = next(model_dir.glob("*.safetensors"))
    os.utime(weights, (cache_time + 10, cache_time + 10))
    calls = []
    real = reference_mod.compute_reference
    monkeypatch.setattr(
        reference_mod, "compute_reference", lambda path: calls.append(path) or real(path)
    )
    fresh = load_reference(run_dir)
    assert len(calls) == 1
    np.testing.assert_allclose(fresh.embeddings, ref.embeddings, atol=1e-5)
    load_reference(run_dir)  # the new cache is fresh: no third computation
    assert len(calls) == 1


def test_a_model_without_its_run_is_a_clear_error(run_dir, tmp_path):
    alone = tmp_path / "alone"
    shutil.copytree(run_dir / "model", alone)
    for name in (CACHE_NPZ, CACHE_JSON):
        (alone / name).unlink(missing_ok=True)
    with pytest.raises(TunelabError, match="config.yaml"):
        load_reference(alone)


def test_missing_data_file_is_named(run_dir, tmp_path, toy_data):
    import yaml

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    for name in (CACHE_NPZ, CACHE_JSON):
        (copy / "model" / name).unlink(missing_ok=True)
    cfg = yaml.safe_load((copy / "config.yaml").read_text())
    cfg["data"]["train"] = str(tmp_path / "gone.jsonl")
    (copy / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(TunelabError, match="gone.jsonl"):
        load_reference(copy)
