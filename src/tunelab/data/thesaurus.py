"""Synonyms for EDA, read straight from the thesauri Debian installs (no new dependency).

Two sources, tried in this order:
1. WordNet 3.0 (`wordnet-base`, `wordnet-sense-index`): `index.{pos}` maps a lemma to its
   synset offsets, and each offset is the byte position of that synset's line in
   `data.{pos}`, so a lookup is one dict hit plus a seek per synset. Only the index files
   are read up front (~0.3 s); the 22 MB of data files are read line by line on demand.
2. MyThes (`mythes-en-us`): `th_en_US_v2.idx` maps a word to the byte offset of its entry
   in the `.dat` file ("word|n" then n lines "(pos)|syn|syn ...").

Both formats are simple, documented text, so a small reader beats pulling in nltk.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from tunelab.errors import TunelabError

WORDNET_DIR = "/usr/share/wordnet"
MYTHES_DAT = "/usr/share/mythes/th_en_US_v2.dat"
POS = ("noun", "verb", "adj", "adv")

# A usable synonym is one plain word (hyphens and apostrophes inside are fine).
_WORD = re.compile(r"^[a-z](?:[a-z'-]*[a-z])?$")
# WordNet adjective markers: `galore(ip)`, `ready_to_hand(p)`.
_ADJ_MARKER = re.compile(r"\((?:a|p|ip)\)$")
# Plural nouns and third-person verbs ("heroes", "loves") are not headwords in either
# thesaurus: (inflected ending, base ending) pairs after WordNet's morphy, "s" family only,
# because those can be put back on a synonym reliably ("film" -> "films").
_S_RULES = (
    ("ies", "y"),
    ("ches", "ch"),
    ("shes", "sh"),
    ("ses", "s"),
    ("xes", "x"),
    ("zes", "z"),
    ("es", "e"),
    ("es", ""),
    ("s", ""),
)
# MyThes qualifiers: hypernyms, related terms and antonyms are not synonyms.
_MYTHES_SKIP = ("(generic term)", "(related term)", "(antonym)")
_MYTHES_QUALIFIER = re.compile(r"\s*\([a-z ]+\)$")


class Thesaurus:
    """Single-word synonyms of English words, from WordNet or MyThes."""

    def __init__(self, source: str, backend: _WordNet | _MyThes) -> None:
        self.source = source  # "wordnet" | "mythes"; shown in reports
        self._backend = backend
        self._cache: dict[str, list[str]] = {}

    @classmethod
    def load(
        cls, wordnet_dir: str | Path = WORDNET_DIR, mythes: str | Path = MYTHES_DAT
    ) -> Thesaurus:
        """WordNet when its files are present, else MyThes; neither raises TunelabError."""
        wn = Path(wordnet_dir)
        if all((wn / f"index.{p}").is_file() and (wn / f"data.{p}").is_file() for p in POS):
            return cls("wordnet", _WordNet(wn))
        dat = Path(mythes)
        if dat.is_file() and dat.with_suffix(".idx").is_file():
            return cls("mythes", _MyThes(dat))
        raise TunelabError(
            f"no thesaurus for synonym augmentation: neither WordNet ({wn}/index.noun ...) nor "
            f"MyThes ({dat}) is installed. Install the Debian packages `wordnet-base "
            "wordnet-sense-index` (or `mythes-en-us`): `make install` installs them, or "
            "`sudo apt-get install wordnet-base wordnet-sense-index`"
        )

    def synonyms(self, word: str) -> list[str]:
        """Lowercase one-word synonyms of `word` (not `word` itself), in sense order; cached.

        An unknown plural or third-person form ("heroes") gets its base form's synonyms,
        put in the same form ("champions").
        """
        key = word.lower()
        found = self._cache.get(key)
        if found is None:
            if self._backend.has(key):
                cands = [c for c in self._backend.lookup(key) if c != key]
            else:
                cands = [
                    _pluralize(c)
                    for b in self._bases(key)
                    for c in self._backend.lookup(b)
                    if c != b and _WORD.match(c)
                ]
            # _WORD also drops proper nouns ("Hero", "Go"): they are rarely what a text meant.
            seen = dict.fromkeys(c for c in cands if c != key and _WORD.match(c))
            found = self._cache[key] = list(seen)
        return list(found)

    def _bases(self, word: str) -> list[str]:
        bases = [b for b in self._backend.irregular(word) if self._backend.has(b)]
        for suffix, ending in _S_RULES:
            if word.endswith(suffix) and len(word) > len(suffix) + 1:
                base = word[: -len(suffix)] + ending
                if self._backend.has(base):
                    bases.append(base)
        return list(dict.fromkeys(b for b in bases if b != word))


def _pluralize(word: str) -> str:
    """Regular English plural / third-person form (the inverse of `_S_RULES`)."""
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u", ""):
        return word[:-1] + "ies"
    return word + "s"


@lru_cache(maxsize=4)
def default_thesaurus(wordnet_dir: str = WORDNET_DIR, mythes: str = MYTHES_DAT) -> Thesaurus:
    """One shared Thesaurus per location, so repeated augment calls read the index once."""
    return Thesaurus.load(wordnet_dir, mythes)


class _WordNet:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._index: dict[bytes, list[tuple[str, bytes]]] | None = None
        self._data: dict[str, bytes] = {}
        self._plurals: dict[str, list[str]] | None = None

    def _load_index(self) -> dict[bytes, list[tuple[str, bytes]]]:
        # lemma -> [(pos, rest of the index line)]; the rest is parsed only when looked up.
        index: dict[bytes, list[tuple[str, bytes]]] = {}
        for pos in POS:
            for line in (self.root / f"index.{pos}").read_bytes().split(b"\n"):
                if not line or line[:2] == b"  ":  # empty, or the license header
                    continue
                lemma, _, rest = line.partition(b" ")
                index.setdefault(lemma, []).append((pos, rest))
        return index

    def has(self, word: str) -> bool:
        if self._index is None:
            self._index = self._load_index()
        return word.replace(" ", "_").encode() in self._index

    def irregular(self, word: str) -> list[str]:
        """Base forms of an irregular plural ("children" -> "child"), from noun.exc."""
        if self._plurals is None:
            self._plurals = {}
            exc = self.root / "noun.exc"
            if exc.is_file():
                for line in exc.read_text(encoding="utf-8").splitlines():
                    inflected, *bases = line.split()
                    self._plurals[inflected] = bases
        return self._plurals.get(word, [])

    def lookup(self, word: str) -> list[str]:
        if self._index is None:
            self._index = self._load_index()
        out: list[str] = []
        for pos, rest in self._index.get(word.replace(" ", "_").encode(), []):
            # rest: pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt offsets...
            fields = rest.split()
            for offset in fields[-int(fields[1]) :]:
                out.extend(self._synset_lemmas(pos, int(offset)))
        return out

    def _synset_lemmas(self, pos: str, offset: int) -> list[str]:
        data = self._data.get(pos)
        if data is None:
            data = self._data[pos] = (self.root / f"data.{pos}").read_bytes()
        line = data[offset : data.index(b"\n", offset)].decode("utf-8", "replace")
        # offset lex_filenum ss_type w_cnt(hex) [word lex_id]...
        fields = line.split(" ")
        words = fields[4 : 4 + 2 * int(fields[3], 16) : 2]
        return [_ADJ_MARKER.sub("", w) for w in words]


class _MyThes:
    def __init__(self, dat: Path) -> None:
        self.dat = dat
        self._offsets: dict[str, int] | None = None

    def _load_index(self) -> dict[str, int]:
        lines = self.dat.with_suffix(".idx").read_text(encoding="utf-8").splitlines()
        offsets: dict[str, int] = {}
        for line in lines[2:]:  # encoding, entry count
            word, _, off = line.rpartition("|")
            if word and off.isdigit():
                offsets.setdefault(word.lower(), int(off))
        return offsets

    def has(self, word: str) -> bool:
        if self._offsets is None:
            self._offsets = self._load_index()
        return word in self._offsets

    def irregular(self, word: str) -> list[str]:
        return []

    def lookup(self, word: str) -> list[str]:
        if self._offsets is None:
            self._offsets = self._load_index()
        offset = self._offsets.get(word)
        if offset is None:
            return []
        out: list[str] = []
        with self.dat.open("rb") as f:
            f.seek(offset)
            _, _, count = f.readline().decode("utf-8").rstrip("\n").rpartition("|")
            for _ in range(int(count or 0)):
                for term in f.readline().decode("utf-8").rstrip("\n").split("|")[1:]:
                    if not term.endswith(_MYTHES_SKIP):
                        out.append(_MYTHES_QUALIFIER.sub("", term))
        return out
