"""results.json and tunelab.json through their pydantic models (RunResult, ModelMeta): a real
tiny run's files load and round-trip, files from before schema_version load, a newer
schema_version or a wrong-typed field is an error naming the file and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import tiny_config

from tunelab import api
from tunelab.config import (
    ModelMeta,
    RunResult,
    read_model_meta,
    read_run_result,
    write_model_meta,
    write_run_result,
)
from tunelab.config.model_meta import SCHEMA_VERSION as META_VERSION
from tunelab.config.model_meta import model_meta
from tunelab.config.run_result import SCHEMA_VERSION as RESULT_VERSION
from tunelab.errors import OutputFileError, TunelabError
from tunelab.methods.loading import load_trained, read_meta

# today's shapes, as tunelab wrote them before schema_version (version 0)
OLD_RESULTS = {
    "validation": {"accuracy": 0.5, "f1_macro": 0.4, "loss": 0.69, "n": 80},
    "test": {"accuracy": 0.55, "f1_macro": 0.5, "n": 80, "samples": [{"text": "a"}]},
    "baselines": {"majority": {"validation": {"accuracy": 0.5}, "note": "most frequent class"}},
    "timing": {
        "train_seconds": 1.5,
        "train_samples": 64,
        "samples_per_s": 42.67,
        "train_tokens": 900,
        "tokens_per_s": 600.0,
        "eval_seconds": 0.2,
        "baseline_seconds": {"majority": 0.01},
        "total_seconds": 3.1,
    },
    "run": {
        "model": "tiny",
        "task": "classification",
        "method": "full",
        "procedure": {"name": "standard"},
        "output": "runs/x",
        "trainable_params": 10,
        "saved_mb": 0.5,
        "adapter_mb": None,
        "total_params": 10,
        "rows": {"train": 64, "validation": 80, "test": 80},
        "validation_from_train": False,
        "labels": ["neg", "pos"],
        "steps": 4,
        "epochs": 1.0,
        "stopped_early": False,
        "best": {"step": 4, "metric": "f1_macro", "value": 0.4},
        "class_weights": None,
        "defaults_chosen": {},
        "device": "cpu",
        "something_new": 1,  # a key this tunelab does not know: kept
    },
}
OLD_META = {
    "task": "classification",
    "labels": {"names": ["neg", "pos"], "multi_label": False, "values": None},
    "max_length": 64,
    "columns": {"text": "text", "text_pair": None, "label": "label"},
    "base_model": "tiny",
    "method": "full",
    "packing": True,
    "generation": {"max_new_tokens": 128},
    "tunelab_version": "0.1.0",
    "merged": False,
}


@pytest.fixture(scope="module")
def run_dir(tiny_model, toy_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("outputs") / "run"
    api.train(tiny_config(tiny_model, toy_data, out, train={"max_steps": 2}))
    return out


def test_a_real_run_loads_and_round_trips(run_dir, tmp_path) -> None:
    raw = json.loads((run_dir / "results.json").read_text())
    assert raw["schema_version"] == RESULT_VERSION
    result = read_run_result(run_dir)
    assert result.run.task == "classification" and result.run.steps == 2
    assert result.timing.train_samples > 0 and result.last_split == "test"
    assert result.test["accuracy"] == raw["test"]["accuracy"]
    assert write_run_result(tmp_path, result) == raw  # same fields, same values
    assert json.loads((tmp_path / "results.json").read_text()) == raw

    meta_raw = json.loads((run_dir / "model" / "tunelab.json").read_text())
    assert meta_raw["schema_version"] == META_VERSION
    meta = read_model_meta(run_dir / "model")
    assert meta.task == "classification" and meta.labels["names"] == result.run.labels
    assert meta.max_length == meta_raw["max_length"] and meta.merged is False
    assert write_model_meta(tmp_path, meta) == meta_raw
    trained = load_trained(run_dir)
    assert isinstance(trained.meta, ModelMeta) and trained.task == "classification"
    assert read_meta(run_dir) == meta


def test_files_from_before_schema_version_load(tmp_path) -> None:
    (tmp_path / "results.json").write_text(json.dumps(OLD_RESULTS))
    result = read_run_result(tmp_path)
    assert result.schema_version == 0
    assert result.run.labels == ["neg", "pos"] and result.run.model_extra == {"something_new": 1}
    assert result.baselines["majority"]["note"] == "most frequent class"
    assert result.distill is None and result.forgetting is None
    out = tmp_path / "again"
    written = write_run_result(out, result)
    assert written == {"schema_version": RESULT_VERSION, **OLD_RESULTS}

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "tunelab.json").write_text(json.dumps(OLD_META))
    meta = read_model_meta(folder)
    assert meta.schema_version == 0 and meta.columns["text"] == "text"
    assert write_model_meta(folder, meta) == {"schema_version": META_VERSION, **OLD_META}


def test_model_meta_defaults_live_in_the_model() -> None:
    bare = model_meta({})  # a hand-written tunelab.json with nothing in it
    assert (bare.task, bare.method, bare.packing, bare.columns) == (
        "classification",
        "full",
        True,
        {},
    )

    class Tok:
        model_max_length = 10**30  # transformers' "no limit"

    assert bare.max_length_for(Tok()) == 512
    assert model_meta({"max_length": 64}).max_length_for(Tok()) == 64
    exported = bare.updated(format="onnx", onnx={"file": "model.onnx"})
    assert exported.format == "onnx" and exported.get("onnx") == {"file": "model.onnx"}
    assert exported["onnx"] == {"file": "model.onnx"} and "onnx" in exported


def test_a_newer_schema_version_says_to_upgrade(tmp_path) -> None:
    (tmp_path / "results.json").write_text(json.dumps({**OLD_RESULTS, "schema_version": 99}))
    with pytest.raises(OutputFileError, match="upgrade tunelab") as err:
        read_run_result(tmp_path)
    assert "results.json" in str(err.value) and "schema_version" in str(err.value)
    (tmp_path / "tunelab.json").write_text(json.dumps({**OLD_META, "schema_version": 2}))
    with pytest.raises(OutputFileError, match=r"tunelab.json, field 'schema_version'.*upgrade"):
        read_model_meta(tmp_path)


def test_a_wrong_typed_field_names_the_file_and_the_field(tmp_path) -> None:
    bad = json.loads(json.dumps(OLD_RESULTS))
    bad["run"]["steps"] = "four"
    (tmp_path / "results.json").write_text(json.dumps(bad))
    with pytest.raises(OutputFileError, match=r"results.json, field 'run.steps'.*'four'"):
        read_run_result(tmp_path)
    del bad["timing"]
    (tmp_path / "results.json").write_text(json.dumps(bad))
    with pytest.raises(OutputFileError, match=r"results.json, field 'timing'"):
        read_run_result(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(OutputFileError, match="results.json: not readable JSON"):
        read_run_result(tmp_path)

    (tmp_path / "tunelab.json").write_text(json.dumps({**OLD_META, "max_length": "long"}))
    with pytest.raises(TunelabError, match=r"tunelab.json, field 'max_length'"):
        read_meta(tmp_path)  # what load_trained reads first, before any weights


def test_run_result_requires_its_sections() -> None:
    with pytest.raises(Exception, match="timing"):
        RunResult.model_validate({"run": OLD_RESULTS["run"]})
