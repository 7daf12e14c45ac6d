"""Exports load back in the libraries a user would load them with and give the run's outputs;
a failing check leaves nothing behind; formats that do not fit are refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from export_fixtures import cls_run, llama_run  # noqa: F401

from tunelab import api
from tunelab.errors import RunDirError
from tunelab.export import ExportError, export_run

TEXTS = ["the movie was great fun", "awful , boring plot", "a very good film", "bad"]


def _torch_logits(run, texts):
    import torch

    from tunelab.methods.loading import load_trained

    t = load_trained(run)
    enc = t.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        return t.model(**enc).logits.numpy(), enc


def test_merged_loads_in_pipeline_with_the_runs_scores(cls_run, tmp_path):  # noqa: F811
    from transformers import pipeline

    out = tmp_path / "merged"
    rec = api.export(cls_run, "merged", output=out)["merged"]
    assert rec["check"]["passed"] and rec["check"]["max_abs_diff"] <= 1e-4
    assert rec["check"]["n"] == 64 and rec["check"]["inputs"].endswith("test.jsonl")
    assert {"model.safetensors", "config.json", "tunelab.json", "README.md"} <= set(rec["files"])
    clf = pipeline("text-classification", model=str(out), top_k=None)
    expected = api.predict(cls_run, TEXTS)
    for got, want in zip(clf(TEXTS), expected):
        scores = {d["label"]: d["score"] for d in got}
        for label, p in want["scores"].items():
            assert scores[label] == pytest.approx(p, abs=1e-5)
    assert json.loads((out / "export.json").read_text())["check"]["passed"] is True
    for got, want in zip(api.predict(out, TEXTS), expected):  # tunelab (and serve) load it too
        assert got["label"] == want["label"]
        assert got["score"] == pytest.approx(want["score"], abs=1e-5)


def test_adapter_export_loads_with_peft(cls_run, tiny_model, tmp_path):  # noqa: F811
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    out = tmp_path / "adapter"
    rec = export_run(cls_run, ["adapter"], output=out)["adapter"]
    assert "adapter_model.safetensors" in rec["files"] and rec["check"]["max_abs_diff"] <= 1e-4
    base = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2)
    model = PeftModel.from_pretrained(base, str(out)).eval()
    ref, enc = _torch_logits(cls_run, TEXTS)
    with torch.inference_mode():
        got = model(**enc).logits.numpy()
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_onnx_runs_in_onnxruntime_with_dynamic_batch_and_length(cls_run, tmp_path):  # noqa: F811
    import onnxruntime as ort

    out = tmp_path / "onnx"
    rec = export_run(cls_run, "onnx", output=out)["onnx"]
    assert rec["check"]["max_abs_diff"] <= 1e-4 and rec["check"]["argmax_agreement"] == 1.0
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    for texts in (TEXTS, TEXTS[:1], TEXTS * 5):  # batch 4, 1, 20; other lengths than traced
        ref, enc = _torch_logits(cls_run, texts)
        feeds = {i.name: enc[i.name].numpy() for i in sess.get_inputs()}
        got = sess.run(["logits"], feeds)[0]
        assert np.abs(got - ref).max() < 1e-4
        assert (got.argmax(-1) == ref.argmax(-1)).all()
    meta = json.loads((out / "tunelab.json").read_text())
    assert meta["format"] == "onnx" and meta["labels"]["names"] == ["negative", "positive"]


def test_onnx_exports_once_with_torchscript_and_falls_back_to_dynamo(
    cls_run,  # noqa: F811
    tmp_path,
    monkeypatch,
    capfd,
):
    """onnx and int8 share one verified fp32 export (the fast TorchScript exporter when its
    model passes the check); an exporter that fails hands over to dynamo, whose
    'torchvision is not installed' log lines stay out of the user's terminal."""
    from tunelab.export import onnx

    calls = []
    write = onnx.write_onnx
    monkeypatch.setattr(onnx, "write_onnx", lambda *a: calls.append(a[3]) or write(*a))
    both = export_run(cls_run, "onnx,int8", output=tmp_path / "both", repeats=1)
    assert calls == ["torchscript"]  # once, for both formats
    assert both["onnx"]["check"]["exporter"] == "torchscript"
    assert both["int8"]["check"]["fp32_onnx_check"]["exporter"] == "torchscript"
    capfd.readouterr()

    def no_torchscript(model, feeds, path, exporter):
        if exporter == "torchscript":
            raise RuntimeError("legacy exporter gone")
        return write(model, feeds, path, exporter)

    monkeypatch.setattr(onnx, "write_onnx", no_torchscript)
    check = export_run(cls_run, "onnx", output=tmp_path / "dynamo")["onnx"]["check"]
    assert check["exporter"] == "dynamo" and check["max_abs_diff"] <= 1e-4
    assert "legacy exporter gone" in check["exporters_failed"]["torchscript"]
    out, err = capfd.readouterr()
    assert "torchvision is not installed" not in out + err
    assert "[torch.onnx]" not in out  # dynamo's progress lines


def test_a_folder_without_a_head_exports_the_weights_it_was_checked_with(tiny_model, tmp_path):
    """A bare encoder folder loads with a random head: the export must be a copy of that very
    model (a second load drew another head, and the check failed on a sound export)."""
    rec = export_run(tiny_model, "onnx", output=tmp_path / "onnx")["onnx"]
    assert rec["check"]["passed"] and rec["check"]["max_abs_diff"] <= 1e-4


def test_onnx_of_rows_as_long_as_the_model_takes(tiny_model):
    """Held-out rows at the model's position limit (128 here): the traced example must not
    grow past them (a padding column made 129 positions, and both exporters failed)."""
    from tunelab.export.onnx import example_inputs, verified_onnx
    from tunelab.export.source import Source
    from tunelab.export.verify import Heldout

    src = Source.open(tiny_model)
    src.__dict__["held"] = Heldout("long rows", texts=[" ".join(["film"] * 126), "a short film"])
    try:
        assert src.feeds()["input_ids"].shape == (2, 128)
        path, figures = verified_onnx(src)
        assert figures["exporter"] == "torchscript" and figures["max_abs_diff"] <= 1e-4
    finally:
        src.close()
    example = example_inputs(src.feeds())
    assert example["input_ids"].shape == (2, 16)
    assert example["attention_mask"][0].all() and example["attention_mask"][1, -1] == 0
    tiny = example_inputs({k: v[:1, :1] for k, v in src.feeds().items()})
    assert tiny["input_ids"].shape == (2, 3) and not tiny["token_type_ids"].any()


def test_quiet_exporter_drops_only_the_torchvision_lines():
    import logging

    from tunelab.export.onnx import _quiet_exporter

    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger.addHandler(handler)
    try:
        with _quiet_exporter():
            logger.warning("torchvision is not installed. Skipping %s", "torchvision::nms")
            logger.warning("a real registration problem")
        logger.warning("torchvision is not installed. Skipping %s", "after the export")
    finally:
        logger.removeHandler(handler)
    assert seen == [
        "a real registration problem",
        "torchvision is not installed. Skipping after the export",
    ]


def test_batched_logits_by_length_keeps_the_rows_order():
    from tunelab.export.verify import batched_logits

    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 12, size=40)
    mask = (np.arange(12)[None, :] < lengths[:, None]).astype(np.int64)  # (N, T)
    ids = rng.integers(5, 100, size=(40, 12)) * mask
    widths = []

    def per_row(feeds):  # (B, 1): the sum of the real ids, whatever the padding
        widths.append(feeds["input_ids"].shape[1])
        return (feeds["input_ids"] * feeds["attention_mask"]).sum(1, keepdims=True)

    def per_token(feeds):  # (B, T, 1)
        return feeds["input_ids"][..., None] * 1.0

    feeds = {"input_ids": ids, "attention_mask": mask}
    plain = batched_logits(per_row, feeds, batch_size=8)
    widths.clear()
    fast = batched_logits(per_row, feeds, batch_size=8, by_length=True)
    np.testing.assert_array_equal(fast, plain)
    assert sum(widths) < 12 * len(widths)  # batches were cut to their longest row
    tokens = batched_logits(per_token, feeds, batch_size=8, by_length=True)
    np.testing.assert_array_equal(tokens[mask.astype(bool)], ids[mask.astype(bool)][:, None])


def test_int8_loads_agrees_and_reports_size_latency_metric(cls_run, tmp_path):  # noqa: F811
    import onnxruntime as ort

    out = tmp_path / "int8"
    check = export_run(cls_run, "int8", output=out, repeats=1)["int8"]["check"]
    assert check["size_mb"]["int8"] < check["size_mb"]["fp32"]
    lat = check["latency_ms_per_example"]
    assert lat["threads"] == 1 and lat["batch_1"]["int8"] > 0 and lat["batch_32"]["fp32"] > 0
    assert set(check["metric"]["fp32"]) == {"accuracy", "f1_macro"}
    assert check["metric"]["rows"] == 80  # the whole toy test file
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    texts = TEXTS * 4
    ref, enc = _torch_logits(cls_run, texts)
    got = sess.run(["logits"], {i.name: enc[i.name].numpy() for i in sess.get_inputs()})[0]
    assert (got.argmax(-1) == ref.argmax(-1)).mean() >= 0.75


def test_failed_check_fails_the_export_and_leaves_nothing(cls_run, tmp_path, monkeypatch):  # noqa: F811
    from tunelab.export import verify

    monkeypatch.setitem(verify.TOLERANCE, "merged", -1.0)  # no difference can pass
    root = tmp_path / "exports"
    with pytest.raises(ExportError, match="merged export failed its check"):
        export_run(cls_run, "merged", output=root / "merged")
    assert not root.exists()


def test_misfit_formats_and_existing_folders_are_refused(cls_run, tmp_path):  # noqa: F811
    with pytest.raises(ExportError, match="--format gguf fits Llama-family causal LMs.*onnx"):
        export_run(cls_run, "gguf", output=tmp_path / "g")
    with pytest.raises(Exception, match="--format: unknown format 'tflite'"):
        export_run(cls_run, "merged,tflite", output=tmp_path / "x")
    (tmp_path / "taken").mkdir()
    with pytest.raises(RunDirError, match="--overwrite"):
        export_run(cls_run, "merged", output=tmp_path / "taken")
    assert not (tmp_path / "g").exists() and not (tmp_path / "x").exists()


def test_cli_misfit_prints_one_line(cls_run, capsys):  # noqa: F811
    from tunelab.cli.commands import main

    assert main(["export", str(cls_run), "--format", "gguf"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --format gguf") and "\n" not in err


def test_cli_exports_two_formats_into_subfolders_as_json(cls_run, tmp_path, capsys):  # noqa: F811
    from tunelab.cli.commands import main

    out = tmp_path / "both"
    assert (
        main(["export", str(cls_run), "--format", "merged,adapter", "--output", str(out), "--json"])
        == 0
    )
    records = json.loads(capsys.readouterr().out)
    assert set(records) == {"merged", "adapter"}
    for fmt, rec in records.items():
        assert rec["output"] == str(out / fmt) and (out / fmt / "export.json").is_file()
        assert rec["check"]["passed"] and rec["check"]["argmax_agreement"] == 1.0


def test_card_names_base_model_data_and_metrics(cls_run, tiny_model, tmp_path):  # noqa: F811
    export_run(cls_run, "merged", output=tmp_path / "m")
    card = (tmp_path / "m" / "README.md").read_text()
    results = json.loads((cls_run / "results.json").read_text())
    assert str(tiny_model) in card and "lora" in card
    assert f"f1_macro {results['test']['f1_macro']:.4f}" in card
    assert "train.jsonl" in card and "Intended use and limits" in card


@pytest.mark.parametrize("quant", ["f32", "f16"])
def test_gguf_loads_back_with_the_same_greedy_tokens(llama_run, tmp_path, quant):  # noqa: F811
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / f"gguf-{quant}"
    check = export_run(llama_run, "gguf", output=out, quant=quant)["gguf"]["check"]
    assert check["greedy_agreement"] == 1.0 and check["tokenizer_match"]
    assert check["max_abs_diff"] <= (1e-4 if quant == "f32" else 1e-1)
    if quant == "f32":
        return  # the check above loaded it back the same way; once more below is enough
    tok = AutoTokenizer.from_pretrained(out, gguf_file="model.gguf")
    model = AutoModelForCausalLM.from_pretrained(out, gguf_file="model.gguf", dtype=torch.float32)
    ref, ref_tok = api.load_causal_lm(llama_run)
    x = ref_tok("Name three colours.", return_tensors="pt")["input_ids"]
    assert tok("Name three colours.", return_tensors="pt")["input_ids"].tolist() == x.tolist()
    kw = {"max_new_tokens": 8, "min_new_tokens": 8, "do_sample": False, "pad_token_id": 0}
    assert model.generate(x, **kw).tolist() == ref.generate(x, **kw).tolist()


def test_gguf_without_qk_permutation_fails_its_check(llama_run, tmp_path, monkeypatch):  # noqa: F811
    from tunelab.export import gguf

    monkeypatch.setattr(gguf, "permute", lambda w, n_head: w)  # what a naive writer would do
    with pytest.raises(ExportError, match="gguf-f32 export failed its check"):
        export_run(llama_run, "gguf", output=tmp_path / "g", quant="f32")
    assert not (tmp_path / "g").exists()


def test_token_classification_int8_metric_matches_the_runs_own(tiny_model, tmp_path):
    from conftest import tiny_config, toy_ner_files

    files = toy_ner_files(tmp_path, 200, 40)
    cfg = tiny_config(
        tiny_model,
        files,
        tmp_path / "run",
        task="token-classification",
        data={"text": "tokens", "label": "ner_tags"},
        train={"epochs": 4, "lr": 5e-3},
    )
    results = api.train(cfg)
    with pytest.raises(ExportError, match="no adapter; --format merged fits it"):
        export_run(tmp_path / "run", "adapter")
    out = tmp_path / "int8"
    check = export_run(tmp_path / "run", "int8", output=out, repeats=1)["int8"]["check"]
    assert check["fp32_onnx_check"]["max_abs_diff"] <= 1e-4  # per-token logits, (N, T, C)
    assert check["metric"]["rows"] == 40
    assert check["metric"]["fp32"]["f1"] == pytest.approx(results["test"]["f1"], abs=1e-4)
    assert oct((out / "export.json").stat().st_mode & 0o777) != oct(0o600)  # shareable


def test_help_has_examples(capsys):
    from tunelab.cli.commands import main

    with pytest.raises(SystemExit) as exc:
        main(["export", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: tunelab export") and "examples:" in out and "--quant" in out
