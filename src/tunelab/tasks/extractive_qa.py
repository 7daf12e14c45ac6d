"""Extractive question answering (SQuAD-style): the answer is a span of the context.

The model (AutoModelForQuestionAnswering) gives every token of a window a start and an end
logit. Reading and validation live in `extractive_qa_data`, windows in
`extractive_qa_windows`; this module holds the head, the loss, and the way back from
per-window logits to one answer per question (`best_spans`): the best span over all the
question's windows, in character offsets of the original context.

Not yet wired into `tasks.get_task`: the training loop reads `model(**batch).logits`,
which QA outputs lack (`model_logits` makes the (B, T, 2) tensor `loss` expects).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tunelab.tasks.extractive_qa_data import (  # noqa: F401  (the task's public face)
    QAData,
    QAExample,
    QASplit,
    columns_of,
    load_data,
    read_examples,
)
from tunelab.tasks.extractive_qa_windows import QAFeatures, featurize  # noqa: F401

NAME = "extractive-qa"
DEFAULT_METRIC = "f1"
DEFAULT_METRIC_WHY = "SQuAD token F1 gives partial credit for overlapping spans; EM is all or none"
COMPARE_COLUMNS = ("f1", "exact_match")
MAX_ANSWER_TOKENS = 30  # longest answer considered, in tokens (HF's max_answer_length)
N_BEST = 20  # start and end candidates per window


def load_model(source, data: QAData | None, cfg, tokenizer):
    """A pretrained encoder with a fresh span head (2 outputs per token: start, end)."""
    from transformers import AutoModelForQuestionAnswering

    from tunelab.models.loading import load_with_head

    return load_with_head(
        source,
        AutoModelForQuestionAnswering,
        dropout=getattr(getattr(cfg, "train", None), "dropout", None),
        tokenizer=tokenizer,
    )


def class_weights(y, labels, mode: str) -> None:
    """No class weights: positions are not classes."""
    return None


def model_logits(outputs):
    """(B, T, 2) start/end logits of a QA model's output (what `loss` and `predict` take)."""
    import torch

    return torch.stack([outputs.start_logits, outputs.end_logits], dim=-1)


def split_logits(logits) -> tuple[Any, Any]:
    """(start, end), each (B, T), from a (start, end) pair, a (B, T, 2) array/tensor, or a
    model output with start_logits/end_logits."""
    if hasattr(logits, "start_logits"):
        return logits.start_logits, logits.end_logits
    if isinstance(logits, (tuple, list)):
        start, end = logits
        return start, end
    if logits.shape[-1] != 2:
        raise ValueError(f"expected (B, T, 2) start/end logits, got shape {tuple(logits.shape)}")
    return logits[..., 0], logits[..., 1]


def loss(logits, labels, weights=None):
    """Mean of the start and end cross-entropies, exactly what HF QA models compute when
    given start/end positions: `labels` (B, 2) token positions, clamped to T and positions
    == T ignored. `weights` is unused (positions have no class weights)."""
    import torch.nn.functional as F

    start, end = split_logits(logits)
    start, end = start.float(), end.float()  # (B, T); loss in fp32 under autocast
    ignored = start.shape[1]
    s = labels[:, 0].clamp(0, ignored)
    e = labels[:, 1].clamp(0, ignored)
    return (
        F.cross_entropy(start, s, ignore_index=ignored)
        + F.cross_entropy(end, e, ignore_index=ignored)
    ) / 2


def _window_candidates(
    start: np.ndarray, end: np.ndarray, offsets, n_best: int, max_tokens: int
) -> list[tuple[float, int, int]]:
    """(score, char start, char end) of the valid spans among the top-n starts x top-n ends
    of one window: both context tokens, end >= start, at most `max_tokens` tokens. When
    the top n yield none, every span of the window is tried."""
    ctx = np.array([o is not None for o in offsets])  # (T,)
    if not ctx.any():
        return []
    start = np.where(ctx, start[: len(offsets)], -np.inf)  # (T,)
    end = np.where(ctx, end[: len(offsets)], -np.inf)
    n_ctx = int(ctx.sum())
    for n in (min(n_best, n_ctx), n_ctx):
        si = np.argsort(-start, kind="stable")[:n]
        ei = np.argsort(-end, kind="stable")[:n]
        i, j = np.meshgrid(si, ei, indexing="ij")  # (n, n) start x end positions
        ok = (j >= i) & (j - i < max_tokens) & ctx[i] & ctx[j]
        if ok.any():
            i, j = i[ok], j[ok]
            scores = start[i] + end[j]
            return [
                (float(sc), offsets[a][0], offsets[b][1])
                for sc, a, b in zip(scores, i.tolist(), j.tolist(), strict=True)
            ]
    return []


def best_spans(
    start_logits: Sequence[np.ndarray] | np.ndarray,
    end_logits: Sequence[np.ndarray] | np.ndarray,
    features: QAFeatures,
    examples: Sequence[QAExample],
    *,
    n_best: int = N_BEST,
    max_answer_tokens: int = MAX_ANSWER_TOKENS,
) -> list[dict]:
    """One answer per example: the best span over all of its windows.

    `start_logits[w]`, `end_logits[w]`: window w's logits, (T_w,) or padded (T,) (a padded
    (W, T) array is fine: positions past the window's length are ignored). Candidates are
    the top-`n_best` starts x top-`n_best` ends per window, end >= start, at most
    `max_answer_tokens` tokens, context tokens only; a span found in several overlapping
    windows counts once, with its best score. Returns, in example order,
    {"id", "answer", "start", "end", "score", "probability"}: character offsets
    (`context[start:end] == answer`), score = start logit + end logit, probability = the
    softmax of the scores over the example's candidates. An example with no candidate (an
    empty window set) gets answer "", score None, probability 0.0.
    """
    per_example: list[dict[tuple[int, int], float]] = [{} for _ in examples]
    for w, ex in enumerate(features.example_index.tolist()):
        found = per_example[ex]
        cands = _window_candidates(
            np.asarray(start_logits[w], dtype=np.float64),
            np.asarray(end_logits[w], dtype=np.float64),
            features.offsets[w],
            n_best,
            max_answer_tokens,
        )
        for score, a, b in cands:
            if score > found.get((a, b), -np.inf):
                found[(a, b)] = score
    out = []
    for e, found in zip(examples, per_example, strict=True):
        if not found:
            out.append(
                {"id": e.id, "answer": "", "start": 0, "end": 0, "score": None, "probability": 0.0}
            )
            continue
        spans = list(found)
        scores = np.array([found[s] for s in spans])
        probs = np.exp(scores - scores.max())
        probs /= probs.sum()
        k = int(scores.argmax())
        a, b = spans[k]
        out.append(
            {
                "id": e.id,
                "answer": e.context[a:b],
                "start": a,
                "end": b,
                "score": float(scores[k]),
                "probability": float(probs[k]),
            }
        )
    return out


def predict(
    logits,
    features: QAFeatures,
    examples: Sequence[QAExample],
    *,
    n_best: int = N_BEST,
    max_answer_tokens: int = MAX_ANSWER_TOKENS,
) -> list[dict]:
    """Answers from per-window logits: a (W, T, 2) array (padded), a tuple (start, end) of
    (W, T) arrays, or a list of per-window (T_w, 2) arrays. See `best_spans`."""
    if isinstance(logits, tuple):
        start, end = logits
    elif isinstance(logits, list):
        start = [np.asarray(x)[:, 0] for x in logits]
        end = [np.asarray(x)[:, 1] for x in logits]
    else:
        arr = np.asarray(logits)  # (W, T, 2)
        start, end = arr[..., 0], arr[..., 1]
    return best_spans(
        start, end, features, examples, n_best=n_best, max_answer_tokens=max_answer_tokens
    )


def score(answers: Sequence[dict | str | None], examples: Sequence[QAExample]) -> dict:
    """SQuAD v1.1 EM and F1 (0..1) of answers (dicts from `predict`, or texts) against the
    examples' gold answers; {"exact_match", "f1", "n"}."""
    from tunelab.metrics.squad import squad_metrics

    texts = [a["answer"] if isinstance(a, dict) else a for a in answers]
    return squad_metrics(texts, [e.answers for e in examples])
