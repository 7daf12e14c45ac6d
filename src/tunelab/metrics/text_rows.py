"""Text metrics kept per row, so a subset's corpus scores need no new pass over the texts.

`tunelab eval` recomputes metrics on thousands of row subsets (bootstrap resamples, slices,
paired tests). Corpus BLEU and chrF are not means of per-row scores: they are computed from
n-gram match counts summed over the corpus. So each row keeps sacrebleu's own sufficient
statistics (what sacrebleu's paired significance tests keep too), and a subset's score is
sacrebleu's score of the summed statistics of its rows: equal to `corpus_bleu`/`corpus_chrf`
on those rows' strings. ROUGE, token F1 and exact match are means of per-row values already
(metrics/text.py), so the per-row values are kept and averaged.

Scales: everything 0-100, as in text_metrics.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tunelab.metrics.text import exact_match_score, token_f1_score

ROUGE_KINDS = ("rouge1", "rouge2", "rougeL")


def _bleu():
    from sacrebleu.metrics import BLEU

    return BLEU()  # corpus settings of text_metrics.bleu: 13a tokenization, exp smoothing


def _chrf():
    from sacrebleu.metrics import CHRF

    return CHRF()  # character 6-grams, beta 2, as text_metrics.chrf


@dataclass
class TextRows:
    """Per-row scores of N (prediction, references) pairs; arrays are (N,) unless noted."""

    token_f1: np.ndarray  # best reference per row, 0-100
    exact_match: np.ndarray  # 0 or 100
    rouge: dict[str, np.ndarray]  # rouge1/rouge2/rougeL F-measure of the best reference, 0-100
    bleu: np.ndarray  # sentence BLEU (sacrebleu sentence_bleu: effective order), 0-100
    bleu_stats: np.ndarray  # (N, 2 + 2 * 4) sacrebleu BLEU statistics per row
    chrf_stats: np.ndarray  # (N, S) sacrebleu chrF statistics per row

    def __len__(self) -> int:
        return len(self.token_f1)

    def corpus(self, index: np.ndarray) -> dict[str, float]:
        """Corpus metrics of rows `index` (positions into these N rows; may repeat), equal to
        text_metrics.text_metrics on those rows' strings. Empty index: NaN everywhere."""
        index = np.asarray(index, dtype=np.int64)
        keys = ("bleu", "chrf", *ROUGE_KINDS, "exact_match", "token_f1")
        if index.size == 0:
            return dict.fromkeys(keys, float("nan"))
        bleu = _bleu()._compute_score_from_stats(self.bleu_stats[index].sum(0).tolist()).score
        chrf = _chrf()._compute_score_from_stats(self.chrf_stats[index].sum(0).tolist()).score
        return {
            "bleu": float(bleu),
            "chrf": float(chrf),
            **{k: float(self.rouge[k][index].mean()) for k in ROUGE_KINDS},
            "exact_match": float(self.exact_match[index].mean()),
            "token_f1": float(self.token_f1[index].mean()),
        }


def text_rows(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> TextRows:
    """Score every row once: per-row metrics and the statistics corpus BLEU/chrF sum.

    Uses sacrebleu's `_extract_corpus_statistics` / `_compute_score_from_stats`, the pair its
    own corpus_score and paired bootstrap are built on (tests check the equality with
    corpus_bleu / corpus_chrf, so a sacrebleu change that breaks it fails loudly)."""
    from rouge_score import rouge_scorer

    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists")
    if any(len(refs) == 0 for refs in references):
        raise ValueError("every row needs at least one reference")
    preds = list(predictions)
    width = max((len(r) for r in references), default=1)
    streams = [[r[k] if k < len(r) else None for r in references] for k in range(width)]
    n = len(preds)
    bleu_stats = np.asarray(_bleu()._extract_corpus_statistics(preds, streams) if n else [])
    chrf_stats = np.asarray(_chrf()._extract_corpus_statistics(preds, streams) if n else [])
    sentence = _sentence_bleu()
    scorer = rouge_scorer.RougeScorer(list(ROUGE_KINDS), use_stemmer=True)
    rouge = {k: np.zeros(n) for k in ROUGE_KINDS}
    for i, (pred, refs) in enumerate(zip(preds, references)):
        best = scorer.score_multi(list(refs), pred)
        for k in ROUGE_KINDS:
            rouge[k][i] = 100.0 * best[k].fmeasure
    return TextRows(
        token_f1=np.array(
            [100.0 * max(token_f1_score(p, r) for r in refs) for p, refs in zip(preds, references)]
        ),
        exact_match=np.array(
            [
                100.0 * max(exact_match_score(p, r) for r in refs)
                for p, refs in zip(preds, references)
            ]
        ),
        rouge=rouge,
        bleu=np.array(
            [sentence.sentence_score(p, list(refs)).score for p, refs in zip(preds, references)]
        ),
        bleu_stats=bleu_stats.reshape(n, -1),
        chrf_stats=chrf_stats.reshape(n, -1),
    )


def _sentence_bleu():
    from sacrebleu.metrics import BLEU

    return BLEU(effective_order=True)  # what sacrebleu.sentence_bleu uses
