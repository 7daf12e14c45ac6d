"""Label-preserving text perturbations for robustness checks: typos, synonym swaps, word drops.

Each function returns `(new_text, words_changed)` and is deterministic given its `rng`.
Synonym swaps and word drops are the EDA edits of `data/augment.py` (the same tokenization,
stopword list and thesaurus), so training-time augmentation and test-time attacks agree on
what "a synonym" and "a word" are; typos are here because only attacks need them.
"""

from __future__ import annotations

import random

from tunelab.data.augment import STOPWORDS, eda, word_tokens
from tunelab.data.thesaurus import Thesaurus

TYPO_OPS = ("swap", "drop", "insert", "keyboard")

# QWERTY neighbours of each letter (same row and the rows above/below).
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
KEYBOARD: dict[str, str] = {}
for _r, _row in enumerate(_ROWS):
    for _c, _ch in enumerate(_row):
        near = [_row[j] for j in (_c - 1, _c + 1) if 0 <= j < len(_row)]
        for _o in (_r - 1, _r + 1):
            if 0 <= _o < len(_ROWS):
                near += [_ROWS[_o][j] for j in (_c - 1, _c, _c + 1) if 0 <= j < len(_ROWS[_o])]
        KEYBOARD[_ch] = "".join(near)


def _n_words(n_words: int, rate: float) -> int:
    return max(1, round(rate * n_words)) if n_words else 0


def typo_word(word: str, op: str, rng: random.Random) -> str:
    """One character-level typo in `word` (>= 2 letters): `swap` two adjacent inner letters,
    `drop` one, `insert` a keyboard neighbour, `keyboard` replace one by a neighbour. The
    first letter stays (people rarely mistype it, and it keeps the word recognisable)."""
    if len(word) < 2:
        return word
    i = rng.randrange(1, len(word))  # never the first letter
    ch = word[i]
    near = KEYBOARD.get(ch.lower(), "") or "etaoin"
    if op == "swap":
        j = i if i < len(word) - 1 else i - 1
        if j == 0 or word[j] == word[j + 1]:  # nothing to swap: fall back to a keyboard slip
            return typo_word(word, "keyboard", rng)
        return word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    if op == "drop":
        return word[:i] + word[i + 1 :]
    if op == "insert":
        return word[:i] + rng.choice(near) + word[i:]
    new = rng.choice(near)
    return word[:i] + (new.upper() if ch.isupper() else new) + word[i + 1 :]


def typos(text: str, rate: float, rng: random.Random, ops=TYPO_OPS) -> tuple[str, int]:
    """Typos in max(1, rate * words) distinct words, drawn from the content words of >= 3
    letters (any word of >= 2 letters when there are none); one typo op per word."""
    toks = word_tokens(text)
    cands = [i for i, t in enumerate(toks) if len(t.core) >= 3 and t.core.lower() not in STOPWORDS]
    if not cands:
        cands = [i for i, t in enumerate(toks) if len(t.core) >= 2]
    n = min(len(cands), _n_words(sum(1 for t in toks if t.core), rate))
    changed = 0
    for i in sorted(rng.sample(cands, n)):
        new = typo_word(toks[i].core, rng.choice(ops), rng)
        changed += new != toks[i].core
        toks[i].core = new
    return " ".join(map(str, toks)), changed


def synonyms(text: str, rate: float, rng: random.Random, thesaurus: Thesaurus) -> tuple[str, int]:
    """EDA synonym replacement: max(1, rate * words) distinct content words swapped for a
    WordNet/MyThes synonym (every occurrence); words changed = tokens that differ."""
    new = eda(text, ["synonym"], rate, rng, thesaurus)
    before, after = text.split(), new.split()
    return new, sum(a != b for a, b in zip(before, after))


def word_drops(text: str, rate: float, rng: random.Random) -> tuple[str, int]:
    """EDA deletion: each bare word dropped with probability `rate` (at least one, never all)."""
    new = eda(text, ["delete"], rate, rng, None)
    return new, len(text.split()) - len(new.split())
