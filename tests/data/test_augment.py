"""Augmentation: the thesaurus readers, the four EDA edits, back-translation through tiny
MarianMT models built from config, and augment()'s row plan and counts on real SST-2 rows."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from tunelab.config.schema import AugmentConfig, BackTranslationConfig
from tunelab.data.augment import Thesaurus, augment, back_translate, eda
from tunelab.errors import ModelSourceError, TunelabError

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
SST2 = DATASETS / "sst2" / "train.jsonl"
WORDNET = Path("/usr/share/wordnet")
MYTHES = Path("/usr/share/mythes/th_en_US_v2.dat")

needs_wordnet = pytest.mark.skipif(
    not (WORDNET / "index.noun").is_file(), reason="wordnet-base not installed"
)
needs_mythes = pytest.mark.skipif(not MYTHES.is_file(), reason="mythes-en-us not installed")
needs_sst2 = pytest.mark.skipif(not SST2.is_file(), reason="shared SST-2 data missing")

TEXT = "the movie was a good film with great actors and a clever story"


def sst2_rows(n: int) -> list[str]:
    with SST2.open(encoding="utf-8") as f:
        return [json.loads(line)["sentence"] for line, _ in zip(f, range(n))]


@pytest.fixture(scope="module")
def th() -> Thesaurus:
    if not (WORDNET / "index.noun").is_file() and not MYTHES.is_file():
        pytest.skip("no thesaurus installed")
    return Thesaurus.load()


# --- thesaurus ---------------------------------------------------------------------------


@needs_wordnet
def test_wordnet_synonyms():
    th = Thesaurus.load()
    assert th.source == "wordnet"
    good = th.synonyms("good")
    assert {"beneficial", "well", "dear"} <= set(good)
    assert "good" not in good
    assert all(s == s.lower() and " " not in s and "_" not in s for s in good)
    assert "film" in th.synonyms("movie") and "film" in th.synonyms("Movie")
    assert th.synonyms("qwzxv") == [] and th.synonyms("the") == []
    assert "films" in th.synonyms("movies")  # plural: base form's synonyms, re-inflected
    assert "kids" in th.synonyms("children")  # irregular plural via noun.exc


@needs_mythes
def test_mythes_fallback(tmp_path):
    th = Thesaurus.load(wordnet_dir=tmp_path / "no-wordnet")
    assert th.source == "mythes"
    assert "film" in th.synonyms("movie")
    good = th.synonyms("good")
    assert "great" in good and "bad" not in good  # "bad (antonym)" is not a synonym
    assert th.synonyms("qwzxv") == []


def test_no_thesaurus_names_the_packages(tmp_path):
    with pytest.raises(TunelabError) as err:
        Thesaurus.load(wordnet_dir=tmp_path / "a", mythes=tmp_path / "b.dat")
    msg = str(err.value)
    assert "wordnet-base" in msg and "wordnet-sense-index" in msg
    assert "mythes-en-us" in msg and "make install" in msg


# --- EDA ---------------------------------------------------------------------------------


def test_synonym_replaces_with_real_synonyms(th):
    words = TEXT.split()
    for seed in range(5):
        out = eda(TEXT, ["synonym"], 0.2, random.Random(seed), th).split()
        assert len(out) == len(words)
        changed = [(a, b) for a, b in zip(words, out) if a != b]
        assert changed
        assert all(b in th.synonyms(a) for a, b in changed)
        assert all(a not in {"the", "a", "and", "with", "was"} for a, _ in changed)


def test_insert_adds_synonyms_of_words_in_the_text(th):
    for seed in range(5):
        out = eda(TEXT, ["insert"], 0.2, random.Random(seed), th).split()
        added = Counter(out) - Counter(TEXT.split())
        assert len(out) > len(TEXT.split()) and sum(added.values()) == len(out) - 13
        assert all(any(w in th.synonyms(src) for src in TEXT.split()) for w in added)


def test_delete_shortens_but_never_empties(th):
    for seed in range(10):
        out = eda(TEXT, ["delete"], 0.1, random.Random(seed), th).split()
        assert 0 < len(out) < len(TEXT.split())
        assert not Counter(out) - Counter(TEXT.split())
        assert eda("two words", ["delete"], 0.5, random.Random(seed), None).strip()
    assert eda("movie", ["delete"], 0.5, random.Random(0), None) == "movie"


def test_swap_keeps_words_and_punctuation_places(th):
    text = "Hello , the movie was fun ! really good"
    for seed in range(5):
        out = eda(text, ["swap"], 0.1, random.Random(seed), th)
        assert out != text and sorted(out.split()) == sorted(text.split())
        assert out.split()[1] == "," and out.split()[6] == "!"
    # punctuation glued to a word stays where it was; only the words move
    out = eda("Well, it was great!", ["swap"], 0.5, random.Random(1), None)
    assert out.count(",") == 1 and out.endswith("!") and out.split()[0].endswith(",")


def test_eda_is_deterministic_and_checks_ops(th):
    ops = ["synonym", "insert", "delete", "swap"]
    runs = [[eda(TEXT, ops, 0.1, random.Random(s), th) for s in range(8)] for _ in range(2)]
    assert runs[0] == runs[1] and len(set(runs[0])) > 4
    with pytest.raises(ValueError, match="unknown op"):
        eda(TEXT, ["shuffle"], 0.1, random.Random(0), th)
    with pytest.raises(ValueError, match="thesaurus"):
        eda(TEXT, ["synonym"], 0.1, random.Random(0), None)
    # without a thesaurus only delete/swap are drawn: no new words appear
    for seed in range(5):
        out = eda(TEXT, ops, 0.1, random.Random(seed), None)
        assert not Counter(out.split()) - Counter(TEXT.split())


# --- augment -----------------------------------------------------------------------------


@needs_sst2
def test_augment_sst2_rows(th):
    rows = sst2_rows(50)
    cfg = AugmentConfig(multiplier=1.0)
    new, pos, counts = augment(rows, cfg, seed=0, thesaurus=th)
    assert len(new) == len(pos) == 50 and sum(counts.values()) == 50
    assert set(counts) == set(cfg.methods) and all(v > 0 for v in counts.values())
    assert sorted(pos) == list(range(50))  # every source row used once
    assert all(n.split() != rows[p].split() and n.strip() for n, p in zip(new, pos))
    assert augment(rows, cfg, seed=0, thesaurus=th) == (new, pos, counts)
    assert augment(rows, cfg, seed=1, thesaurus=th)[0] != new

    half, pos_half, counts_half = augment(rows, AugmentConfig(multiplier=0.5), 3, th)
    assert len(half) == 25 and sum(counts_half.values()) == 25 and len(set(pos_half)) == 25

    twice = augment(rows[:10], AugmentConfig(multiplier=2.0, methods=["swap", "delete"]), 0, th)
    assert Counter(twice[1]) == dict.fromkeys(range(10), 2)  # all rows before any twice
    assert augment(rows, AugmentConfig(multiplier=0.0), 0, th) == (
        [],
        [],
        dict.fromkeys(cfg.methods, 0),
    )


def test_augment_drops_rows_it_cannot_change():
    cfg = AugmentConfig(multiplier=1.0, methods=["delete", "swap"])
    new, pos, counts = augment(["one", "two words", "three more words"], cfg, 0)
    assert sorted(pos) == [1, 2] and sum(counts.values()) == 2


# --- back-translation with tiny models -----------------------------------------------------


@pytest.fixture(scope="module")
def marian_pair(tmp_path_factory) -> tuple[str, str]:
    """Two 1-layer, d_model-16 MarianMT models with a word-level tokenizer trained offline."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import MarianConfig, MarianMTModel, PreTrainedTokenizerFast

    corpus = sst2_rows(300) if SST2.is_file() else [TEXT, "a dull and boring plot"]
    raw = Tokenizer(models.WordLevel(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(
        corpus, trainers.WordLevelTrainer(special_tokens=["<pad>", "</s>", "<unk>"])
    )
    raw.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    raw.decoder = decoders.WordPiece()  # joins words with spaces
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    dirs = []
    for seed, name in enumerate(("en-xx", "xx-en")):
        torch.manual_seed(seed)
        config = MarianConfig(
            vocab_size=len(tok),
            d_model=16,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            max_position_embeddings=64,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
        out = tmp_path_factory.mktemp(name)
        MarianMTModel(config).save_pretrained(out)
        tok.save_pretrained(out)
        dirs.append(str(out))
    return dirs[0], dirs[1]


def test_back_translate_is_batched(marian_pair, monkeypatch, capsys):
    from transformers import MarianMTModel

    batches: list[int] = []
    generate = MarianMTModel.generate

    def spy(self, *args, **kwargs):
        batches.append(kwargs["input_ids"].shape[0])
        return generate(self, *args, **kwargs)

    monkeypatch.setattr(MarianMTModel, "generate", spy)
    texts = [TEXT, "a dull plot", "great actors", "the story", "fun", "a clever film", "bad"]
    out = back_translate(texts, *marian_pair, max_new_tokens=6, batch_size=3)
    assert len(out) == 7 and all(isinstance(t, str) and t for t in out)
    assert batches == [3, 3, 1, 3, 3, 1]  # forward then backward, 3 per batch
    assert "back-translation" in capsys.readouterr().err  # the progress bar
    assert back_translate([], *marian_pair) == []


@needs_sst2
def test_augment_with_back_translation(marian_pair, th):
    rows = sst2_rows(6)
    bt = BackTranslationConfig(forward=marian_pair[0], backward=marian_pair[1], max_new_tokens=6)
    cfg = AugmentConfig(multiplier=1.0, methods=["back_translation", "swap"], back_translation=bt)
    new, pos, counts = augment(rows, cfg, seed=0, thesaurus=th)
    assert len(new) == 6 and counts == {"back_translation": 3, "swap": 3}
    assert sorted(pos) == list(range(6))
    assert all(n.split() != rows[p].split() for n, p in zip(new, pos))


def test_back_translation_rejects_a_non_seq2seq_model(tiny_model, marian_pair):
    with pytest.raises(ModelSourceError, match="seq2seq"):
        back_translate(["a text"], str(tiny_model), marian_pair[1], max_new_tokens=4)
