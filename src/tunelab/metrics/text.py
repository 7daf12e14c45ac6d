"""Text-generation metrics against one or more references per row, all on a 0-100 scale.

- BLEU and chrF: sacrebleu corpus scores (default 13a tokenization for BLEU; chrF with
  character 6-grams, beta 2), several references per row allowed, rows may have different
  numbers of references.
- ROUGE-1/2/L: rouge-score F-measure with the Porter stemmer, the best reference per row,
  averaged over rows.
- Exact match and token F1: the official SQuAD evaluation (normalize: lowercase, strip
  punctuation and the articles a/an/the, collapse whitespace), the best reference per row,
  averaged over rows.

Pure functions: `predictions` is a list of N strings, `references` a list of N lists of
strings (each with at least one reference).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def _check(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> None:
    if len(predictions) != len(references):
        raise ValueError(
            f"{len(predictions)} predictions but {len(references)} reference lists; "
            "they must pair up row by row"
        )
    empty = [i for i, refs in enumerate(references) if len(refs) == 0]
    if empty:
        raise ValueError(f"row {empty[0]} has no reference")


def _streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """sacrebleu's layout: one stream per reference position, None where a row has fewer."""
    width = max(len(refs) for refs in references)
    return [[refs[k] if k < len(refs) else None for refs in references] for k in range(width)]


def bleu(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU (sacrebleu, 13a tokenization), 0-100; identical texts score 100."""
    import sacrebleu

    _check(predictions, references)
    if not predictions:
        return 0.0
    return float(sacrebleu.corpus_bleu(list(predictions), _streams(references)).score)


def chrf(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus chrF (sacrebleu defaults: character 6-grams, beta 2), 0-100."""
    import sacrebleu

    _check(predictions, references)
    if not predictions:
        return 0.0
    return float(sacrebleu.corpus_chrf(list(predictions), _streams(references)).score)


def rouge(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """{"rouge1", "rouge2", "rougeL"}: F-measure (0-100) of the best reference per row, averaged.

    rouge-score's tokenizer keeps only [a-z0-9] runs (lowercased), so it suits English text;
    with the Porter stemmer, as in the ROUGE-1.5.5 convention (-m)."""
    from rouge_score import rouge_scorer

    _check(predictions, references)
    kinds = ("rouge1", "rouge2", "rougeL")
    if not predictions:
        return dict.fromkeys(kinds, 0.0)
    scorer = rouge_scorer.RougeScorer(list(kinds), use_stemmer=True)
    totals = dict.fromkeys(kinds, 0.0)
    for pred, refs in zip(predictions, references):
        best = scorer.score_multi(list(refs), pred)  # per kind: the reference with the best F
        for k in kinds:
            totals[k] += best[k].fmeasure
    return {k: 100.0 * v / len(predictions) for k, v in totals.items()}


def normalize_answer(text: str) -> str:
    """SQuAD normalization: lowercase, drop punctuation, drop articles, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match_score(prediction: str, reference: str) -> float:
    """1.0 when the normalized texts are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1_score(prediction: str, reference: str) -> float:
    """F1 of the normalized tokens' bag overlap (0-1). When either side normalizes to nothing,
    1.0 if both do and 0.0 otherwise (the SQuAD v2.0 script's rule)."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def exact_match(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Share of rows (0-100) whose prediction equals some reference after normalization."""
    _check(predictions, references)
    if not predictions:
        return 0.0
    hits = sum(
        max(exact_match_score(p, r) for r in refs) for p, refs in zip(predictions, references)
    )
    return 100.0 * hits / len(predictions)


def token_f1(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Token F1 (0-100) against the best reference per row, averaged over rows."""
    _check(predictions, references)
    if not predictions:
        return 0.0
    total = sum(max(token_f1_score(p, r) for r in refs) for p, refs in zip(predictions, references))
    return 100.0 * total / len(predictions)


def text_metrics(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict:
    """Every metric above in one flat dict: bleu, chrf, rouge1, rouge2, rougeL, exact_match,
    token_f1 (all 0-100)."""
    return {
        "bleu": bleu(predictions, references),
        "chrf": chrf(predictions, references),
        **rouge(predictions, references),
        "exact_match": exact_match(predictions, references),
        "token_f1": token_f1(predictions, references),
    }
