"""Causal-LM data: format detection, template rendering with assistant-only labels,
truncation, and packing that leaks neither attention nor positions between examples."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from tunelab.errors import DataError
from tunelab.tasks.causal_lm_data import (
    IGNORE,
    detect_file_format,
    detect_format,
    encode_row,
    preview,
    render,
    to_messages,
)
from tunelab.tasks.packing import (
    collate_packed,
    pack,
    padding_waste,
    truncate,
    truncate_all,
)

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
ALPACA = DATASETS / "instructions" / "alpaca_5k.jsonl"
CHAT = [
    {"role": "system", "content": "You answer briefly."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
    {"role": "assistant", "content": "Rome, of course."},
]


@pytest.fixture(scope="module")
def tok():
    from tunelab.models.loading import load_tokenizer
    from tunelab.models.sources import resolve_model

    return load_tokenizer(resolve_model("smollm2-135m-instruct"))


def trained_text(ids, labels, tok) -> str:
    return tok.decode([t for t, y in zip(ids, labels, strict=True) if y != IGNORE])


# --- formats -------------------------------------------------------------------------


@pytest.mark.skipif(not ALPACA.exists(), reason="shared datasets not present")
def test_detects_alpaca_file_and_builds_user_turn_with_input():
    rows = [json.loads(line) for line in ALPACA.read_text().splitlines()[:200]]
    assert detect_file_format(rows, file=str(ALPACA)) == "instruction"
    row = next(r for r in rows if r["input"])
    msgs = to_messages(row, "instruction")
    assert msgs == [
        {"role": "user", "content": f"{row['instruction']}\n\n{row['input']}"},
        {"role": "assistant", "content": row["output"]},
    ]
    no_input = next(r for r in rows if not r["input"])
    assert to_messages(no_input, "instruction")[0]["content"] == no_input["instruction"]


def test_detects_crafted_formats_and_normalizes_sharegpt():
    assert detect_format({"messages": CHAT}) == "messages"
    share = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}
    assert detect_format(share) == "messages"
    assert to_messages(share, "messages") == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo"},
    ]
    assert detect_format({"prompt": "2+2=", "completion": "4"}) == "prompt_completion"
    assert detect_format({"text": "plain prose"}) == "text"
    dolly = {"instruction": "Summarize", "context": "Long text", "response": "Short"}
    assert detect_format(dolly) == "instruction"
    assert to_messages(dolly, "instruction")[0]["content"] == "Summarize\n\nLong text"
    custom = {"q": "why?", "a": "because"}
    fields = {"instruction": "q", "output": "a"}
    assert detect_format(custom, fields) == "instruction"
    assert detect_file_format([], file="notes.txt") == "text"


def test_row_fitting_no_format_names_file_row_and_columns():
    rows = [{"text": "fine"}, {"question": "q?", "answer": "a"}]
    with pytest.raises(DataError) as e:
        detect_file_format(rows, file="data/train.jsonl")
    msg = str(e.value)
    assert e.value.row == 2 and "data/train.jsonl, row 2" in msg
    assert "question, answer" in msg and "prompt_completion" in msg


def test_conversation_without_assistant_turn_is_an_error():
    row = {"messages": [{"role": "user", "content": "hello?"}]}
    with pytest.raises(DataError, match=r"chat\.jsonl, row 7: .*no assistant turn"):
        to_messages(row, "messages", file="chat.jsonl", row_number=7)


# --- rendering -----------------------------------------------------------------------


def test_only_assistant_answers_each_ending_with_eos_are_trained(tok):
    ids, labels = render(CHAT, tok)
    assert len(ids) == len(labels)
    assert trained_text(ids, labels, tok) == "Paris.<|im_end|>Rome, of course.<|im_end|>"
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.eos_token_id == eos
    trained = [i for i, y in enumerate(labels) if y != IGNORE]
    ends = [i for i in trained if i + 1 not in trained]  # last token of each trained span
    assert len(ends) == 2 and all(ids[i] == eos and labels[i] == eos for i in ends)
    untrained = tok.decode([t for t, y in zip(ids, labels, strict=True) if y == IGNORE])
    for m in CHAT[:2] + CHAT[3:4]:
        assert m["content"] in untrained
    assert "Paris" not in untrained and "Rome" not in untrained
    shown = preview(ids, labels, tok)
    assert "«Paris.<|im_end|>»" in shown and "«Rome, of course.<|im_end|>»" in shown


def test_empty_answer_still_trains_exactly_one_eos(tok):
    ids, labels = encode_row({"instruction": "Say nothing", "output": ""}, "instruction", tok)
    assert [y for y in labels if y != IGNORE] == [tok.eos_token_id]
    assert ids.count(tok.eos_token_id) == tok.decode(ids).count("<|im_end|>")


def test_train_on_all_labels_everything(tok):
    ids, labels = render(CHAT, tok, train_on="all")
    assert labels == ids


def test_prompt_completion_plain_and_text_end_with_trained_eos(tok):
    row = {"prompt": "Q: 2+2? A:", "completion": " 4"}
    ids, labels = encode_row(row, "prompt_completion", tok, use_chat_template=False)
    assert trained_text(ids, labels, tok) == " 4<|im_end|>"
    assert tok.decode(ids) == "Q: 2+2? A: 4<|im_end|>"
    ids, labels = encode_row(row, "prompt_completion", tok)  # through the chat template
    assert trained_text(ids, labels, tok) == " 4<|im_end|>"
    assert "<|im_start|>user" in tok.decode(ids)
    ids, labels = encode_row({"text": "Domain prose."}, "text", tok)
    assert labels == ids and ids[-1] == tok.eos_token_id


# --- truncation ----------------------------------------------------------------------


def test_truncate_keeps_head_and_drop_policy_and_counts():
    short = ([1, 2, 3], [IGNORE, 2, 3])
    long_ok = ([1, 2, 3, 4, 5, 6], [IGNORE, 2, 3, 4, 5, 6])
    answer_beyond = ([1, 2, 3, 4, 5, 6], [IGNORE] * 5 + [6])
    assert truncate(*long_ok, 4) == ([1, 2, 3, 4], [IGNORE, 2, 3, 4])
    assert truncate(*long_ok, 4, "drop") is None
    assert truncate(*answer_beyond, 4) is None
    kept, counts = truncate_all([short, long_ok, answer_beyond], 4)
    assert kept == [short, ([1, 2, 3, 4], [IGNORE, 2, 3, 4])]
    assert counts == {"too_long": 2, "truncated": 1, "dropped": 1}
    kept, counts = truncate_all([short, long_ok, answer_beyond], 4, policy="drop")
    assert kept == [short] and counts == {"too_long": 2, "truncated": 0, "dropped": 2}


# --- packing -------------------------------------------------------------------------


def random_rows(n: int, seed: int = 0, vocab: int = 100, longest: int = 30):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        ids = [rng.randrange(3, vocab) for _ in range(rng.randint(2, longest))]
        rows.append((ids, [IGNORE] * (len(ids) // 2) + ids[len(ids) // 2 :]))
    return rows


def test_pack_places_each_example_once_within_max_length():
    rows = random_rows(200)
    packed = pack(rows, 64)
    seen = sorted(i for p in packed for i in p["examples"])
    assert seen == list(range(len(rows)))
    assert len(packed) < len(rows) / 2  # actually packs
    for p in packed:
        assert len(p["input_ids"]) == len(p["labels"]) == len(p["position_ids"]) <= 64
        start = 0
        for i, n in zip(p["examples"], p["seq_lens"], strict=True):
            ids, labels = rows[i]
            assert p["input_ids"][start : start + n] == ids
            assert p["position_ids"][start : start + n] == list(range(n))
            assert p["labels"][start] == IGNORE  # never predicted from the previous example
            assert p["labels"][start + 1 : start + n] == labels[1:]
            start += n
    with pytest.raises(ValueError, match="longer than max_length"):
        pack(rows, 10)


def test_padding_waste_is_lower_when_packed():
    lengths = [len(ids) for ids, _ in random_rows(200)]
    unpacked = padding_waste(lengths, 8, packed=False, max_length=64)
    packed = padding_waste(lengths, 8, packed=True, max_length=64)
    assert 0.0 <= packed < unpacked < 1.0
    assert padding_waste([5, 5], 2, packed=False, max_length=64) == 0.0


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_packed_logits_equal_separate_logits(impl):
    """The point of packing done right: each example's logits in a packed, padded batch equal
    its logits alone. Also records transformers' behaviour with position ids alone."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    model = LlamaForCausalLM._from_config(config, attn_implementation=impl).eval()
    rows = random_rows(7, seed=1, longest=12)
    batch = pack(rows, 24)
    assert len(batch) >= 2 and any(len(p["examples"]) > 1 for p in batch)
    inputs = collate_packed(batch, pad_id=0)
    width = inputs["input_ids"].shape[1]
    assert inputs["attention_mask"].shape == (len(batch), 1, width, width)
    with torch.no_grad():
        alone = [model(torch.tensor([ids])).logits[0] for ids, _ in rows]  # (L, V) each
        out = {
            "4d": model(**{k: v for k, v in inputs.items() if k != "labels"}).logits,
            "pos": model(inputs["input_ids"], position_ids=inputs["position_ids"]).logits,
            "pos_nocache": model(
                inputs["input_ids"], position_ids=inputs["position_ids"], use_cache=False
            ).logits,
        }  # (B, T, V) each

    def max_diff(logits: torch.Tensor) -> float:
        worst = 0.0
        for b, p in enumerate(batch):
            start = 0
            for i, n in zip(p["examples"], p["seq_lens"], strict=True):
                worst = max(worst, (logits[b, start : start + n] - alone[i]).abs().max().item())
                start += n
        return worst

    assert max_diff(out["4d"]) < 1e-4
    assert torch.isfinite(out["4d"]).all()  # pad rows attend to themselves: no NaN
    # transformers 5.23: position-id resets isolate examples only without a cache ...
    assert max_diff(out["pos_nocache"]) < 1e-4
    # ... and the default use_cache=True makes examples attend across boundaries.
    assert max_diff(out["pos"]) > 1e-3
    loss = model(**inputs).loss
    assert torch.isfinite(loss)
