"""SQuAD v1.1 exact match and F1, exactly as the official `evaluate-v1.1.py` computes them.

Scale: **0..1 floats** (the official script prints 0..100), to match tunelab's other
metrics; multiply by 100 to compare with published numbers.

Normalisation (the official `normalize_answer`, in its order): lowercase, delete every
character of `string.punctuation` (ASCII only: "–", "’", "€" stay, and "Broncos'" becomes
"broncos" but "U.S." becomes "us"), replace the whole words a/an/the with a space, collapse
whitespace. A prediction is scored against each gold answer and keeps the best, for EM and
F1 separately. F1 is the bag-of-tokens F1 of the normalised strings; when they share no token
it is 0, even if both normalise to nothing (v1.1's rule; the v2.0 script and
`metrics/text.py` give 1.0 there). A question without a prediction scores 0 and
still counts in the average.

Written by hand (20 lines of the official script) rather than taken from `evaluate`, which
downloads its metric scripts from the Hub.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """The official normalisation: lower, drop ASCII punctuation, drop a/an/the, fix spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match_score(prediction: str, gold: str) -> float:
    """1.0 when the normalised strings are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str) -> float:
    """Token-bag F1 (0..1) of the normalised strings; 0.0 when no token is shared."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def best_over_golds(
    metric: Callable[[str, str], float], prediction: str, golds: Iterable[str]
) -> float:
    """`metric` against every gold answer, the best one (the official
    `metric_max_over_ground_truths`)."""
    scores = [metric(prediction, g) for g in golds]
    if not scores:
        raise ValueError("a question needs at least one gold answer")
    return max(scores)


def squad_metrics(
    predictions: Sequence[str | None], golds: Sequence[Sequence[str]]
) -> dict[str, float | int]:
    """Corpus EM and F1 (0..1): each question's best over its gold answers, averaged.

    `predictions[i]` is the answer text for question i (None: unanswered, scores 0);
    `golds[i]` its gold answer texts (duplicates allowed, as in the dev set). Returns
    {"exact_match", "f1", "n"}; n = 0 gives 0.0 for both.
    """
    if len(predictions) != len(golds):
        raise ValueError(
            f"{len(predictions)} predictions but {len(golds)} gold answer lists; "
            "they must pair up question by question"
        )
    em = f1 = 0.0
    for i, (pred, refs) in enumerate(zip(predictions, golds, strict=True)):
        if not refs:
            raise ValueError(f"question {i} has no gold answer")
        if pred is None:
            continue
        em += best_over_golds(exact_match_score, pred, refs)
        f1 += best_over_golds(f1_score, pred, refs)
    n = len(predictions)
    return {"exact_match": em / n if n else 0.0, "f1": f1 / n if n else 0.0, "n": n}


def evaluate_squad_file(dataset: Mapping | Sequence, predictions: Mapping[str, str]) -> dict:
    """The official script's `evaluate(dataset, predictions)`, on the 0..1 scale.

    `dataset` is the parsed official JSON (the dict, or its "data" list of articles);
    `predictions` maps question id -> answer text. Adds "missing": questions without a
    prediction (the official script prints one line per such question and scores it 0).
    """
    articles = dataset["data"] if isinstance(dataset, Mapping) else dataset
    ids, golds = [], []
    for article in articles:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                ids.append(qa["id"])
                golds.append([a["text"] for a in qa["answers"]])
    preds = [predictions.get(i) for i in ids]
    out = squad_metrics(preds, golds)
    out["missing"] = sum(p is None for p in preds)
    return out
