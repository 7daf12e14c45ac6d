"""Baselines for extractive QA that need no model: what a fine-tuned reader must beat.

- `first_word`: the context's first word (the floor: near 0 EM).
- `best_sentence`: the context sentence that shares the most question words, IDF-weighted
  within the context (the sliding-window idea of Richardson et al.'s MCTest baseline, with
  sentences as windows): high recall, low precision.
- `lexical_overlap`: inside that sentence, the run of words next to the question's words
  that is not itself made of question words, preferring the answer type the wh-word asks for
  (a number for "how many"/"when", a capitalised name for "who"/"where") and short spans.

Pure Python (regular expressions and a small built-in stopword list, so no NLTK data to
download), a few milliseconds per question.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not now of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up
    upon very was we were what when where which while who whom whose why will with would you
    your yours yourself yourselves name named called type kind many much one""".split()
)
_WORD = re.compile(r"\w+(?:[-'’.,]\w+)*", re.UNICODE)  # "24–10" is two words, "2,000" one
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_MONTHS = frozenset(
    "january february march april may june july august september october november december".split()
)
_NUMBER_Q = re.compile(
    r"\b(how (many|much|long|old|far|large|big|often)|what (year|percentage|"
    r"percent|date|day|month|time|age)|which year|when)\b",
    re.I,
)
_NAME_Q = re.compile(
    r"\b(who|whom|whose|where|what (city|country|state|team|company|"
    r"organization|person|place))\b",
    re.I,
)


def _norm(word: str) -> str:
    """Lower-case, drop a possessive and a plural s: matching, not linguistics."""
    w = word.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) > 4 and w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    return w


def _words(text: str, offset: int = 0) -> list[tuple[str, int, int]]:
    return [(m.group(), m.start() + offset, m.end() + offset) for m in _WORD.finditer(text)]


def sentences(context: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the context's sentences."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(context):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(context)))
    return [(a, b) for a, b in spans if context[a:b].strip()]


def _content(words) -> set[str]:
    return {_norm(w) for w, _, _ in words if w.lower() not in STOPWORDS}


def _best_sentence(question: str, context: str):
    """(span, its words, the question's content words, overlap score) of the best sentence."""
    spans = sentences(context)
    sent_words = [_words(context[a:b], a) for a, b in spans]
    q = _content(_words(question))
    n = len(spans)
    df: dict[str, int] = {}
    for ws in sent_words:
        for w in _content(ws):
            df[w] = df.get(w, 0) + 1
    best, best_score = 0, -1.0
    for k, ws in enumerate(sent_words):
        s = sum(math.log(1 + n / df[w]) for w in q & _content(ws))
        if s > best_score:  # ties: the earlier sentence
            best, best_score = k, s
    return spans[best], sent_words[best], q, best_score


def _kind(question: str) -> str | None:
    if _NUMBER_Q.search(question):
        return "number"
    if _NAME_Q.search(question):
        return "name"
    return None


def _typed(kind: str | None, word: str, first_of_sentence: bool) -> bool:
    """Whether one word is of the answer type: a number or month, or a capitalised word
    (the sentence's first word does not count as a name)."""
    if kind == "number":
        return any(c.isdigit() for c in word) or word.lower() in _MONTHS
    if kind == "name":
        return word[:1].isupper() and not first_of_sentence
    return False


def _trim_to_type(kind: str | None, words, i: int, j: int) -> tuple[int, int, bool]:
    """(i, j, fits): the span from its first word of the answer type on ("of its 12 to 15
    million" -> "12 to 15 million"), when it has one."""
    for k in range(i, j + 1):
        if _typed(kind, words[k][0], k == 0):
            return k, j, True
    return i, j, False


def _candidates(context: str, words, q: set[str]) -> list[tuple[int, int]]:
    """Runs of sentence words (index ranges) cut at question words and punctuation other than
    hyphens and apostrophes, with stopwords trimmed from both ends."""
    runs, cur = [], []
    for k, (w, a, _) in enumerate(words):
        gap = context[words[k - 1][2] : a] if k else ""
        if _norm(w) in q or (cur and gap.strip(" -–")):
            if cur:
                runs.append(cur)
            cur = []
        if _norm(w) not in q:
            cur.append(k)
    if cur:
        runs.append(cur)
    out = []
    for run in runs:
        while run and words[run[0]][0].lower() in STOPWORDS:
            run = run[1:]
        while run and words[run[-1]][0].lower() in STOPWORDS:
            run = run[:-1]
        if run:
            out.append((run[0], run[-1]))
    return out


def lexical_overlap_answer(question: str, context: str, max_words: int = 6) -> dict:
    """The baseline's answer to one question: {"answer", "start", "end", "score"}.

    Candidates (see `_candidates`) in the best sentence are ranked by: the wh-word's answer
    type found in them (+2; the candidate then starts at its first word of that type), their
    distance in words to the nearest question word (-0.3 per word), their length beyond 3
    words (-0.2 per word); a run longer than `max_words` keeps its `max_words` words nearest
    the question words."""
    (sa, sb), words, q, _ = _best_sentence(question, context)
    if not words:
        return {"answer": context[sa:sb], "start": sa, "end": sb, "score": 0.0}
    kind = _kind(question)
    hits = [k for k, (w, _, _) in enumerate(words) if _norm(w) in q]
    best, best_score = None, -math.inf
    for i, j in _candidates(context, words, q):
        if j - i + 1 > max_words:  # keep the end nearer the question's words
            near_start = not hits or min(abs(h - i) for h in hits) <= min(abs(h - j) for h in hits)
            i, j = (i, i + max_words - 1) if near_start else (j - max_words + 1, j)
        i, j, fits = _trim_to_type(kind, words, i, j)
        dist = min((min(abs(h - i), abs(h - j)) for h in hits), default=len(words))
        s = 2.0 * fits - 0.3 * dist - 0.2 * max(0, j - i - 2)
        if s > best_score:
            best, best_score = (i, j), s
    if best is None:  # every word is a question word or a stopword: the whole sentence
        return {"answer": context[sa:sb], "start": sa, "end": sb, "score": -math.inf}
    a, b = words[best[0]][1], words[best[1]][2]
    return {"answer": context[a:b], "start": a, "end": b, "score": float(best_score)}


def lexical_overlap(examples: Sequence) -> list[dict]:
    """`lexical_overlap_answer` for every example (QAExample or anything with .question and
    .context)."""
    return [lexical_overlap_answer(e.question, e.context) for e in examples]


def best_sentence(examples: Sequence) -> list[dict]:
    """The best-overlapping sentence as the answer."""
    out = []
    for e in examples:
        (a, b), _, _, s = _best_sentence(e.question, e.context)
        out.append({"answer": e.context[a:b], "start": a, "end": b, "score": float(s)})
    return out


def first_word(examples: Sequence) -> list[dict]:
    """The context's first word as the answer (the floor)."""
    out = []
    for e in examples:
        w = _words(e.context)
        a, b = (w[0][1], w[0][2]) if w else (0, 0)
        out.append({"answer": e.context[a:b], "start": a, "end": b, "score": 0.0})
    return out


BASELINES = {
    "first_word": first_word,
    "best_sentence": best_sentence,
    "lexical_overlap": lexical_overlap,
}


def baseline_scores(examples: Sequence, names: Sequence[str] = tuple(BASELINES)) -> dict:
    """{name: {"exact_match", "f1", "n"}} (SQuAD v1.1, 0..1) of each baseline on `examples`."""
    from tunelab.metrics.squad import squad_metrics

    golds = [e.answers for e in examples]
    return {n: squad_metrics([a["answer"] for a in BASELINES[n](examples)], golds) for n in names}
