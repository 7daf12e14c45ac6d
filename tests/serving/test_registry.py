"""How the registry loads adapters: shared bases, merged loners, refusals (no server)."""

from __future__ import annotations

import pytest
from serving_helpers import random_lora

from tunelab.errors import ModelSourceError
from tunelab.serving.registry import Registry


def _greedy(model, tok, text: str = "Once upon", n: int = 6) -> list[int]:
    import torch

    ids = tok(text, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(
            **ids, max_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id
        )
    return out[0, ids["input_ids"].shape[1] :].tolist()


def test_loras_share_one_base_module(tiny_llama, tmp_path):
    a = random_lora(tiny_llama, tmp_path / "a", seed=1)
    b = random_lora(tiny_llama, tmp_path / "b", seed=2)
    reg = Registry([f"base={tiny_llama}", f"a={a}", f"b={b}"])
    reg.load()
    groups = reg.groups()
    assert list(groups) == ["base"] and len(groups["base"]) == 3
    module = reg.models["base"].model
    assert reg.models["a"].model is module and reg.models["b"].model is module
    assert sorted(module.peft_config) == ["a", "b"]
    assert [reg.models[n].adapter for n in ("base", "a", "b")] == [None, "a", "b"]


def test_dora_alone_is_merged_and_answers_as_peft(tiny_llama, tmp_path):
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = LoraConfig(
        r=4,
        target_modules=["q_proj", "v_proj"],
        use_dora=True,
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    folder = random_lora(tiny_llama, tmp_path / "dora", seed=3, config=config, method="dora")
    reg = Registry([f"d={folder}"])
    reg.load()
    served = reg.models["d"]
    assert not hasattr(served.model, "peft_config") and served.adapter is None  # merged
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    alone = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama), folder)
    assert _greedy(served.model, tok) == _greedy(alone.eval(), tok)


def test_prefix_tuning_is_refused(tiny_llama, tmp_path):
    from peft import PrefixTuningConfig

    config = PrefixTuningConfig(num_virtual_tokens=4, task_type="CAUSAL_LM")
    folder = random_lora(tiny_llama, tmp_path / "prefix", seed=4, config=config, method="prefix")
    with pytest.raises(ModelSourceError, match="prefix/prompt tuning"):
        Registry([f"p={folder}"]).load()
