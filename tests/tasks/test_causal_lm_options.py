"""Causal-LM options on a tiny Llama with the real SmolLM2 chat template and real Alpaca rows:
packing on/off, too-long rows, the few-shot base comparison, generation settings and samples."""

from __future__ import annotations

import json

import pytest

from tunelab import api
from tunelab.config.schema import DataConfig
from tunelab.tasks import causal_lm


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_llama):
    """The tiny Llama re-initialized with large weights, so greedy text varies (at the usual
    0.02 init a random model repeats one token)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from tunelab.models.loading import load_tokenizer
    from tunelab.models.sources import resolve_model

    config = AutoConfig.from_pretrained(tiny_llama)
    config.initializer_range = 1.0
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    return model, load_tokenizer(resolve_model(str(tiny_llama)))


def _split(path, **data):
    return causal_lm.read_split("dev", str(path), DataConfig(train=str(path), **data))


def test_packed_and_unpacked_score_the_same(alpaca, model_and_tokenizer):
    """Isolation check: if packed examples saw each other, the packed loss would differ."""
    from tunelab.evaluation.scoring.causal_lm import score_lm_features

    model, tok = model_and_tokenizer
    _, dev = alpaca
    packed = causal_lm.featurize(_split(dev), tok, 512)
    single = causal_lm.featurize(_split(dev, packing=False), tok, 512)
    assert len(single) == 16 and len(packed) < len(single)  # rows, and fewer packed sequences
    a = score_lm_features(model, packed, 4, tok.pad_token_id)
    b = score_lm_features(model, single, 4, tok.pad_token_id)
    assert a["tokens"] == b["tokens"]
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)


def test_too_long_rows_truncate_or_drop_with_a_count(alpaca, model_and_tokenizer, capsys):
    _, tok = model_and_tokenizer
    _, dev = alpaca
    lengths = causal_lm.featurize(_split(dev), tok, None).lengths
    limit = int(sorted(lengths)[len(lengths) // 2])  # half the rows are longer
    longer = int((lengths > limit).sum())
    cut = causal_lm.featurize(_split(dev, packing=False), tok, limit)
    assert f"{longer} of 16 rows are longer than max_length {limit}" in capsys.readouterr().out
    dropped = causal_lm.featurize(_split(dev, packing=False, too_long="drop"), tok, limit)
    assert f"0 truncated, {longer} dropped" in capsys.readouterr().out
    assert len(dropped) == 16 - longer
    assert max(dropped.lengths) <= limit and max(cut.lengths) <= limit
    assert len(cut) > len(dropped)  # truncated rows that kept answer tokens stay


def test_few_shot_scores_only_the_rows_own_answers(alpaca, model_and_tokenizer):
    from tunelab.tasks.causal_lm_data import IGNORE

    model, tok = model_and_tokenizer
    train, dev = alpaca
    zero = causal_lm.featurize(_split(dev, packing=False), tok, 1024)
    few = causal_lm.few_shot_featurize(
        _split(dev, packing=False), _split(train), tok, 1024, shots=2
    )
    trained = lambda f: sum(sum(x != IGNORE for x in p["labels"]) for p in f.packed)  # noqa: E731
    assert trained(few) == trained(zero)  # the same answer tokens are scored
    assert sum(few.lengths) > sum(zero.lengths) + 16 * 20  # with examples in front
    prompt = tok.decode(few.packed[0]["input_ids"])
    assert prompt.count("<|im_start|>assistant") == 3  # two demonstrations + the row's answer


def test_run_reports_base_few_shot_and_generation_samples(tiny_llama, alpaca, tmp_path):
    train, dev = alpaca
    results = api.train(
        {
            "model": str(tiny_llama),
            "task": "causal-lm",
            "data": {"train": str(train), "test": str(dev), "max_length": 512},
            "method": {"name": "full"},
            "train": {"max_steps": 2, "batch_size": 8, "lr": 1e-3},
            "eval": {"few_shot": 2, "generate_rows": 4},
            "generation": {"max_new_tokens": 6},
            "output": str(tmp_path / "run"),
        }
    )
    few = results["baselines"]["base_few_shot"]
    assert few["shots"] == 2 and few["test"]["tokens"] == results["test"]["tokens"]
    for m in (results["test"], results["baselines"]["base_model"]["test"]):
        assert m["generated_rows"] == 4 and 0 <= m["stop_rate"] <= 1
        assert m["gen_tokens_mean"] <= 6
        assert {"prompt", "reference", "generated", "finish"} <= set(m["samples"][0])
    meta = json.loads((tmp_path / "run" / "model" / "tunelab.json").read_text())
    assert meta["generation"]["max_new_tokens"] == 6
    # the run's generation settings are the defaults of generate; arguments override them
    assert api.generation_config(tmp_path / "run").max_new_tokens == 6
    assert api.generation_config(tmp_path / "run", max_new_tokens=9).max_new_tokens == 9


def test_generation_finish_reasons_and_stop_strings(model_and_tokenizer):
    from tunelab.config.generation import GenerationConfig
    from tunelab.inference.generation import complete

    model, tok = model_and_tokenizer
    prompts = ["Name a colour.", "Count to three."]
    long = complete(model, tok, prompts, GenerationConfig(max_new_tokens=12))
    one_by_one = [
        complete(model, tok, [p], GenerationConfig(max_new_tokens=12))[0] for p in prompts
    ]
    assert [o["text"] for o in long] == [o["text"] for o in one_by_one]  # batching is invisible
    text = long[0]["text"]
    assert long[0]["finish"] == "length" and long[0]["tokens"] == 12  # a random model rambles
    stop = text[len(text) // 2 : len(text) // 2 + 3]
    cut = complete(model, tok, prompts[:1], GenerationConfig(max_new_tokens=12, stop=[stop]))[0]
    assert cut["finish"] == "stop" and cut["text"] == text[: text.index(stop)].strip()


def test_generation_settings_are_validated_by_name(tiny_llama):
    from tunelab.errors import ConfigError

    with pytest.raises(ConfigError, match="generation.top_p"):
        api.generation_config(None, top_p=1.5)
    with pytest.raises(ConfigError, match="beam search is greedy"):
        api.generation_config(None, num_beams=2, temperature=0.7)


def test_cli_generation_flags(tiny_llama, capsys):
    from tunelab.cli.commands import _generation, main
    from tunelab.cli.parser import build_parser as _parser

    args = _parser().parse_args(
        ["generate", str(tiny_llama), "--prompt", "hi", "--stop", "\\n\\nUser:", "--num-beams", "2"]
    )
    gen = _generation(args)  # a shell passes backslash-n as two characters
    assert gen.stop == ["\n\nUser:"] and gen.num_beams == 2 and gen.max_new_tokens == 128

    assert (
        main(["generate", str(tiny_llama), "--prompt", "hi", "--max-new-tokens", "3", "--json"])
        == 0
    )
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["prompt"] == "hi" and isinstance(out["completion"], str)
    bad = main(["generate", str(tiny_llama), "--prompt", "hi", "--top-p", "2"])
    assert bad != 0 and "generation.top_p" in capsys.readouterr().err
