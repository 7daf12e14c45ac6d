"""Robustness attacks: typos / synonym swaps / word drops edit as specified and are seeded;
the greedy attack flips a trained model; figures are right on a hand-made case; the CLI flag
works end to end and bad input gets a clear error."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from conftest import tiny_config

from tunelab import api, cli
from tunelab.data.thesaurus import Thesaurus
from tunelab.evaluation.robustness import perturb
from tunelab.evaluation.robustness.attack import attack_rows, format_table

SENT = "the actors deliver wonderful performances in this charming and clever little movie"


@pytest.fixture(scope="module")
def thesaurus():
    try:
        return Thesaurus.load()
    except Exception:
        pytest.skip("no WordNet / MyThes installed")


def _diff(a: str, b: str) -> list[tuple[str, str]]:
    return [(x, y) for x, y in zip(a.split(), b.split()) if x != y]


@pytest.mark.parametrize("op", perturb.TYPO_OPS)
def test_typo_word_ops(op):
    rng = random.Random(1)
    for word in ("wonderful", "movie", "clever", "performances"):
        new = perturb.typo_word(word, op, rng)
        assert new != word and new[0] == word[0]
        if op == "swap":
            assert sorted(new) == sorted(word) and len(new) == len(word)
            assert sum(a != b for a, b in zip(new, word)) == 2
        elif op == "drop":
            assert len(new) == len(word) - 1
        elif op == "insert":
            assert len(new) == len(word) + 1
        else:
            (i,) = [k for k, (a, b) in enumerate(zip(new, word)) if a != b]
            assert new[i] in perturb.KEYBOARD[word[i]]


def test_typos_count_and_seed():
    new, changed = perturb.typos(SENT, 0.2, random.Random(3))
    words = len(SENT.split())  # 12 -> round(2.4) = 2 words
    assert changed == round(0.2 * words) == 2
    diff = _diff(SENT, new)
    assert len(diff) == 2 and len(new.split()) == words
    assert all(old not in ("the", "in", "this", "and") for old, _ in diff)  # content words only
    assert perturb.typos(SENT, 0.2, random.Random(3)) == (new, changed)
    assert perturb.typos(SENT, 0.2, random.Random(4))[0] != new
    assert perturb.typos("ok", 0.2, random.Random(0))[1] == 1  # short text: still one word


def test_synonyms_swap_real_synonyms(thesaurus):
    new, changed = perturb.synonyms(SENT, 0.2, random.Random(0), thesaurus)
    assert changed == int(0.2 * len(SENT.split())) == 2
    for old, repl in _diff(SENT, new):
        assert repl in thesaurus.synonyms(old)
    assert perturb.synonyms(SENT, 0.2, random.Random(0), thesaurus)[0] == new


def test_word_drops_keep_order():
    new, changed = perturb.word_drops(SENT, 0.3, random.Random(2))
    assert changed >= 1 and len(new.split()) == len(SENT.split()) - changed
    it = iter(SENT.split())
    assert all(w in it for w in new.split())  # a subsequence: words dropped, none moved
    assert perturb.word_drops(SENT, 0.3, random.Random(2)) == (new, changed)


class _Syn:
    def __init__(self, table):
        self.table = table

    def synonyms(self, word):
        return list(self.table.get(word.lower(), []))


def _keyword_proba(texts, pairs):
    """'good' anywhere: positive (p=0.9), else negative."""
    p = np.array([0.9 if "good" in t.split() else 0.1 for t in texts])
    return np.stack([1 - p, p], axis=1)


def test_greedy_success_rate_on_a_hand_made_case():
    texts = ["good movie", "a good film indeed", "bad plot", "good but awful"]
    y = np.array([1, 1, 0, 0])  # the last one the model gets wrong
    th = _Syn({"good": ["fine", "nice"], "bad": ["poor"], "movie": ["film"]})
    out = attack_rows(_keyword_proba, texts, None, y, ["greedy"], thesaurus=th, examples=5)
    g = out["attacks"]["greedy"]
    assert out["clean_accuracy"] == 0.75
    assert g["attacked"] == 3 and g["flipped"] == 2
    assert g["success_rate"] == pytest.approx(2 / 3)
    assert g["accuracy"] == 0.25  # only "bad plot" stays right; the wrong row stays wrong
    assert g["mean_words_changed"] == pytest.approx(2 / 3)  # 1 + 1 + 0 over the 3 attacked
    first = g["examples"][0]
    assert first["original"] == "good movie" and first["perturbed"] == "fine movie"
    assert (first["before"], first["after"]) == ("1", "0")
    # the same rows under a random attack: seeded, so the figures repeat exactly
    a = attack_rows(_keyword_proba, texts, None, y, ["drop", "typo"], seed=7)
    assert a == attack_rows(_keyword_proba, texts, None, y, ["drop", "typo"], seed=7)
    assert "greedy" in format_table(out) and "fine movie" in format_table(out)


def test_unknown_attack_is_refused():
    from tunelab.errors import TunelabError

    with pytest.raises(TunelabError, match="--attacks.*paraphrase"):
        attack_rows(_keyword_proba, ["good"], None, np.array([1]), ["paraphrase"])


@pytest.fixture(scope="module")
def trained_run(tiny_model, toy_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("robust") / "run"
    results = api.train(tiny_config(tiny_model, toy_data, out))
    assert results["test"]["accuracy"] > 0.9
    return out


def test_greedy_flips_a_trained_model_and_cli_end_to_end(trained_run, toy_data, capsys, thesaurus):
    argv = ["eval", str(trained_run), "--data", str(toy_data["test"]), "--robustness"]
    assert cli.main(argv + ["--attacks", "typo,greedy", "--rows", "40", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 40 and set(res["attacks"]) == {"typo", "greedy"}
    g = res["attacks"]["greedy"]
    assert g["flipped"] > 0 and g["accuracy"] < res["clean_accuracy"]
    assert g["success_rate"] == pytest.approx(g["flipped"] / g["attacked"])
    flipped = [e for e in g["examples"] if e["before"] != e["after"]]
    assert flipped and all(e["original"] != e["perturbed"] for e in flipped)
    assert 1 <= g["mean_words_changed"] <= 4
    # the same call again: deterministic
    assert cli.main(argv + ["--attacks", "typo,greedy", "--rows", "40", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == res
    assert cli.main(argv + ["--attacks", "drop", "--rows", "10"]) == 0
    table = capsys.readouterr().out
    assert "clean accuracy" in table and "drop" in table


def test_cli_bad_input(trained_run, toy_data, tmp_path, capsys):
    argv = ["eval", str(trained_run), "--robustness", "--data"]
    assert cli.main(argv + [str(tmp_path / "missing.jsonl")]) != 0
    assert "missing.jsonl: no such file" in capsys.readouterr().err
    assert cli.main(argv + [str(toy_data["test"]), "--text-column", "review"]) != 0
    err = capsys.readouterr().err
    assert "review" in err and "test.jsonl" in err
    assert cli.main(argv + [str(toy_data["test"]), "--attacks", "nope"]) != 0
    assert "--attacks" in capsys.readouterr().err
