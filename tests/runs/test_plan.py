"""`tunelab plan` and train's preflight, as a user runs them, on tiny models from config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path

import pytest
import yaml
from conftest import minilm_dir, tiny_config

from tunelab.cli.commands import main


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _config(tmp_path: Path, model: Path, data: dict, **sections) -> Path:
    sections.setdefault("train", {"max_steps": 2, "batch_size": 16})
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(tiny_config(model, data, tmp_path / "out", **sections)))
    return path


def test_plan_json_has_the_estimate_fits_and_recommendations(tmp_path, tiny_model, toy_data):
    code, out, _ = _run("plan", str(_config(tmp_path, tiny_model, toy_data)), "--json")
    assert code == 0
    plan = json.loads(out)
    e = plan["estimate"]
    for key in ("peak_mib", "step_s", "epoch_s", "weights_mib", "activations_mib", "logits_mib"):
        assert e[key] > 0 or key == "logits_mib"
    assert plan["fits"] is True and plan["recommendations"] == []
    assert plan["data"]["rows"] == 320 and plan["data"]["length_max"] >= plan["data"]["length_p50"]
    assert not (tmp_path / "out").exists()  # a plan writes no run


def test_plan_for_a_gpu_this_machine_does_not_have(tmp_path, tiny_model, toy_data):
    cfg = _config(tmp_path, tiny_model, toy_data)
    code, out, _ = _run("plan", str(cfg), "method.name=qlora", "--device", "cuda:80GB", "--json")
    assert code == 0
    plan = json.loads(out)
    assert plan["device"]["kind"] == "cuda" and plan["device"]["memory_mib"] == 80 * 1024
    assert plan["estimate"]["precision"] == "bf16" and plan["speed"]["source"] == "nominal"


def test_a_bad_config_path_or_key_is_named(tmp_path, tiny_model, toy_data):
    code, _, err = _run("plan", str(tmp_path / "nope.yaml"))
    assert code != 0 and "nope.yaml" in err
    cfg = _config(tmp_path, tiny_model, toy_data)
    code, _, err = _run("plan", str(cfg), "train.lr=-1")
    assert code != 0 and "train.lr" in err
    code, _, err = _run("plan", str(cfg), "train.batchsize=4")
    assert code != 0 and "train.batchsize" in err


def test_preflight_refuses_a_run_that_will_not_fit_and_no_preflight_trains_it(
    tmp_path, tiny_model, toy_data, monkeypatch
):
    cfg = _config(tmp_path, tiny_model, toy_data)
    monkeypatch.setenv("TUNELAB_PLAN_DEVICE", "cpu:0.03GB")  # 30 MiB: less than the runtime
    code, _, err = _run("train", str(cfg))
    assert code == 3
    assert "preflight" in err and "--no-preflight" in err and "MiB" in err
    assert not (tmp_path / "out" / "results.json").exists()  # refused before any work
    code, _, _ = _run("train", str(cfg), "--no-preflight")
    assert code == 0
    monkeypatch.delenv("TUNELAB_PLAN_DEVICE")
    code, _, _ = _run("train", str(cfg), "--overwrite")
    assert code == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    plan = results["plan"]
    assert plan["estimate_peak_mib"] > 0 and plan["measured_peak_mib"] is not None


def _medium_model(root: Path) -> Path:
    """A 4-layer, hidden-256 BERT: big enough that memory is the model's, not the runtime's."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(minilm_dir())
    config = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        max_position_embeddings=256,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(root, safe_serialization=True)
    tok.save_pretrained(root)
    return root


@pytest.mark.e2e
@pytest.mark.parametrize("method", ["full", "lora"])
def test_measure_agrees_with_the_estimate(tmp_path, toy_data, method):
    """--measure in a fresh process: the estimated peak within 35% of the measured RSS peak
    (bench/results/plan.md has the errors on real models). Step time only within 10x: on
    this shared 2-core machine the time estimate has run 3-6x low (bench/results/plan.md)."""
    model = _medium_model(tmp_path / "model")
    cfg = _config(tmp_path, model, toy_data, train={"batch_size": 64, "max_steps": 2})
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tunelab.cli",
            "plan",
            str(cfg),
            f"method.name={method}",
            "data.max_length=64",
            "--measure",
            "--json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout[proc.stdout.index("{") :])
    est, got = plan["estimate"], plan["measured"]
    assert est["peak_mib"] == pytest.approx(got["peak_mib"], rel=0.35)
    assert 0.1 < est["step_s"] / got["step_s"] < 10
