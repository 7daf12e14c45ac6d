"""Cheap baselines that show what fine-tuning added.

A fine-tuned model at 91% accuracy means little on its own: on a 90/10 split the majority
class gets 90%, and TF-IDF + logistic regression often lands within a few points of a
transformer. Each baseline trains on the same train split and is scored with
`classification_metrics` on the same evaluation splits as the fine-tuned model.
All return {split: metrics}; timing is the caller's job.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tunelab.metrics.classification import classification_metrics

# Same rule as train.class_weights="auto": balanced when the largest class is > 1.5x the smallest.
_IMBALANCE_RATIO = 1.5


def _class_weight(y_train: np.ndarray, multi_label: bool) -> str | None:
    """ "balanced" when the training labels are imbalanced, else None (unweighted)."""
    if multi_label:
        # Each one-vs-rest problem is binary: positives vs negatives of that label.
        pos = y_train.sum(axis=0)
        counts = np.stack([pos, y_train.shape[0] - pos], axis=1).astype(float)
        counts = counts[(counts > 0).all(axis=1)]
        if counts.size == 0:
            return None
        ratio = (counts.max(axis=1) / counts.min(axis=1)).max()
    else:
        counts = np.bincount(y_train)
        counts = counts[counts > 0]
        ratio = counts.max() / counts.min()
    return "balanced" if ratio > _IMBALANCE_RATIO else None


def _targets(y: Any, multi_label: bool) -> np.ndarray:
    arr = np.asarray(y)
    return arr.astype(np.int64) if multi_label else arr.astype(np.int64).reshape(-1)


def majority_baseline(
    y_train: Any,
    eval_sets: dict[str, Any],
    label_names: list[str],
    multi_label: bool = False,
) -> dict[str, dict[str, Any]]:
    """Predict the most frequent training class for every row (ties: the lower index).

    Multi-label: predict each label that is positive in more than half of the training
    rows (usually none) — the constant prediction with the best expected accuracy per label.
    """
    yt = _targets(y_train, multi_label)
    if multi_label:
        constant = (yt.mean(axis=0) > 0.5).astype(np.int64)  # (C,)
    else:
        constant = np.int64(np.bincount(yt, minlength=len(label_names)).argmax())
    out = {}
    for split, y in eval_sets.items():
        ye = _targets(y, multi_label)
        pred = np.broadcast_to(constant, ye.shape).copy()
        out[split] = classification_metrics(ye, pred, label_names, multi_label)
    return out


def _fit_predict(
    estimator_factory: Any,
    x_train: Any,
    y_train: np.ndarray,
    eval_x: dict[str, Any],
    multi_label: bool,
) -> dict[str, np.ndarray]:
    """Fit a classifier (one-vs-rest when multi-label) and predict each eval split.

    A single-label train set with one class cannot fit a logistic regression; it predicts
    that class, which is what any classifier would learn from such data.
    """
    if multi_label:
        from sklearn.multiclass import OneVsRestClassifier

        # OneVsRest predicts a constant for labels with one value in train (with a warning).
        clf = OneVsRestClassifier(estimator_factory(_class_weight(y_train, True)))
    elif len(np.unique(y_train)) < 2:
        only = y_train[0]
        return {s: np.full(_len(x), only, dtype=np.int64) for s, x in eval_x.items()}
    else:
        clf = estimator_factory(_class_weight(y_train, False))
    from threadpoolctl import threadpool_limits

    # These fits are small; multi-threaded BLAS only oversubscribes the cores (measured 10-20x
    # slower with lbfgs when anything else, e.g. a training run, holds a core).
    with threadpool_limits(limits=1):
        clf.fit(x_train, y_train)
        return {s: np.asarray(clf.predict(x)).astype(np.int64) for s, x in eval_x.items()}


def _len(x: Any) -> int:
    return x.shape[0] if hasattr(x, "shape") else len(x)


def tfidf_logreg_baseline(
    train_texts: list[str],
    y_train: Any,
    eval_sets: dict[str, tuple[list[str], Any]],
    label_names: list[str],
    multi_label: bool = False,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """TF-IDF word 1-2 grams + logistic regression, the classic strong text baseline.

    C=4.0 (weak regularisation suits sparse n-gram features on small/medium datasets; a
    grid search would cost more than the baseline is worth). Sentence pairs: pass the two
    texts joined ("a [SEP] b"). Multi-label: one logistic regression per label.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    yt = _targets(y_train, multi_label)
    # token_pattern keeps one-character tokens ("a", "5", "I") that the default drops.
    vec = TfidfVectorizer(
        ngram_range=(1, 2),
        sublinear_tf=True,
        min_df=1,
        max_features=100_000,
        token_pattern=r"(?u)\b\w+\b",
    )
    x_train = vec.fit_transform(list(train_texts))
    eval_x = {s: vec.transform(list(texts)) for s, (texts, _) in eval_sets.items()}

    def factory(class_weight: str | None) -> Any:
        return LogisticRegression(
            C=4.0, max_iter=1000, class_weight=class_weight, random_state=seed
        )

    preds = _fit_predict(factory, x_train, yt, eval_x, multi_label)
    return {
        s: classification_metrics(_targets(y, multi_label), preds[s], label_names, multi_label)
        for s, (_, y) in eval_sets.items()
    }


def linear_probe_baseline(
    train_features: np.ndarray,
    y_train: Any,
    eval_sets: dict[str, tuple[np.ndarray, Any]],
    label_names: list[str],
    multi_label: bool = False,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Standardised logistic regression on frozen-encoder embeddings (see frozen_embeddings).

    Measures what the pretrained representation already knows without any weight update,
    which separates "the encoder is good" from "fine-tuning helped".
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    yt = _targets(y_train, multi_label)

    def factory(class_weight: str | None) -> Any:
        return make_pipeline(
            StandardScaler(),
            LogisticRegression(C=1.0, max_iter=1000, class_weight=class_weight, random_state=seed),
        )

    eval_x = {s: np.asarray(x, dtype=np.float32) for s, (x, _) in eval_sets.items()}
    preds = _fit_predict(factory, np.asarray(train_features, np.float32), yt, eval_x, multi_label)
    return {
        s: classification_metrics(_targets(y, multi_label), preds[s], label_names, multi_label)
        for s, (_, y) in eval_sets.items()
    }


def frozen_embeddings(
    model: Any,
    tokenizer: Any,
    texts: list[str],
    pairs: list[str] | None = None,
    batch_size: int = 64,
    max_length: int = 128,
) -> np.ndarray:
    """Mean-pooled last hidden state of a transformers encoder: (N, H) float32.

    Works for AutoModel and AutoModel*ForSequenceClassification alike (reads
    `hidden_states[-1]`). Rows are sorted by length so each batch pads little, and the
    result is returned in the original order; padding never changes a row's embedding
    because pooling is weighted by the attention mask. The model is put in eval mode
    (no dropout) for the call and restored afterwards.
    """
    import torch

    if pairs is not None and len(pairs) != len(texts):
        raise ValueError(f"texts and pairs differ in length: {len(texts)} vs {len(pairs)}")
    hidden = int(model.config.hidden_size)
    n = len(texts)
    out = np.zeros((n, hidden), dtype=np.float32)
    if n == 0:
        return out
    # Character length is a cheap, good proxy for token length when sorting.
    lengths = [len(t) + (len(pairs[i]) if pairs is not None else 0) for i, t in enumerate(texts)]
    order = np.argsort(lengths, kind="stable")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                a = [texts[i] for i in idx]
                b = [pairs[i] for i in idx] if pairs is not None else None
                batch = tokenizer(
                    a,
                    b,
                    truncation=True,
                    max_length=max_length,
                    padding=True,
                    return_tensors="pt",
                )
                batch = {k: v.to(device) for k, v in batch.items()}
                hs = (
                    model(**batch, output_hidden_states=True).hidden_states[-1].float()
                )  # (B, T, H)
                mask = batch["attention_mask"].unsqueeze(-1).to(hs.dtype)  # (B, T, 1)
                pooled = (hs * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, H)
                out[idx] = pooled.cpu().numpy()
    finally:
        model.train(was_training)
    return out
