"""Per-row outputs of the label tasks for `tunelab eval`: classification, token
classification (NER) and masked-LM.

Each function reads the file the way the model was trained, runs the model once, and keeps
what the metrics need per row, so that `metric_fn(idx)` recomputes the headline metrics on
any subset of rows (bootstrap resamples repeat rows) with numpy alone. On all rows the
numbers equal the flat `metrics` dict that `tunelab eval` printed before, which is kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tunelab.config.schema import DataConfig
from tunelab.data import read_table
from tunelab.data.batching import sorted_batches
from tunelab.evaluation.read_file import read_eval_split
from tunelab.evaluation.report.calibration import calibration, confident_mistakes
from tunelab.evaluation.report.rows import RowOutputs
from tunelab.evaluation.scoring.classification import score_logits
from tunelab.evaluation.scoring.entities import bio_entities, entity_metrics, token_logits
from tunelab.inference.forward import logits_for
from tunelab.models.loading import quiet_transformers
from tunelab.tasks import classification, mlm, token_classification
from tunelab.tasks.mlm import _boundary_ids
from tunelab.tasks.mlm_data import read_texts


def _safe_div(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b != 0)


def _prf(tp: np.ndarray, n_pred: np.ndarray, n_true: np.ndarray):
    """Precision, recall, F1 arrays (0 where undefined: sklearn's zero_division=0)."""
    p, r = _safe_div(tp, n_pred), _safe_div(tp, n_true)
    return p, r, _safe_div(2 * p * r, p + r)


# ---------------------------------------------------------------- classification


def single_label_metric_fn(y: np.ndarray, pred: np.ndarray, nll: np.ndarray, n_classes: int):
    """metric_fn of a single-label classifier: accuracy, macro P/R/F1, weighted F1 and loss
    from a confusion matrix counted over the chosen rows (the same conventions as
    metrics.classification_metrics: every class scored, zero_division=0)."""

    def metric_fn(idx: np.ndarray) -> dict[str, float]:
        idx = np.asarray(idx, dtype=np.int64)
        t, p = y[idx], pred[idx]
        cm = np.bincount(t * n_classes + p, minlength=n_classes * n_classes)
        cm = cm.reshape(n_classes, n_classes)  # (C, C): rows = true, cols = predicted
        tp, support = np.diag(cm), cm.sum(axis=1)
        prec, rec, f1 = _prf(tp, cm.sum(axis=0), support)
        n = max(len(idx), 1)
        return {
            "accuracy": float(tp.sum() / n),
            "f1_macro": float(f1.mean()),
            "precision_macro": float(prec.mean()),
            "recall_macro": float(rec.mean()),
            "f1_weighted": float((f1 * support).sum() / n),
            "loss": float(nll[idx].mean()) if len(idx) else 0.0,
        }

    return metric_fn


def multi_label_metric_fn(y: np.ndarray, pred: np.ndarray, nll: np.ndarray):
    """metric_fn of a multi-label classifier (multi-hot (N, C) arrays): subset accuracy,
    micro and macro F1, hamming loss, loss."""
    y, pred = y.astype(bool), pred.astype(bool)

    def metric_fn(idx: np.ndarray) -> dict[str, float]:
        idx = np.asarray(idx, dtype=np.int64)
        t, p = y[idx], pred[idx]  # (n, C)
        tp, n_pred, n_true = (t & p).sum(0), p.sum(0), t.sum(0)
        _, _, f1 = _prf(tp, n_pred, n_true)
        _, _, f1_micro = _prf(tp.sum(), n_pred.sum(), n_true.sum())
        return {
            "accuracy": float((t == p).all(axis=1).mean()) if len(idx) else 0.0,
            "f1_micro": float(f1_micro),
            "f1_macro": float(f1.mean()),
            "hamming_loss": float((t != p).mean()) if len(idx) else 0.0,
            "loss": float(nll[idx].mean()) if len(idx) else 0.0,
        }

    return metric_fn


def _row_nll(logits: np.ndarray, y: np.ndarray, multi_label: bool) -> np.ndarray:
    """(N,) loss per row: cross-entropy, or BCE averaged over labels (so the mean over rows
    is the task's unweighted loss)."""
    z = logits.astype(np.float64)
    if multi_label:  # log(1 + e^-|z|) + max(z, 0) - z*y, stable
        bce = np.logaddexp(0, -np.abs(z)) + np.maximum(z, 0) - z * y
        return bce.mean(axis=1)
    m = z.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
    return lse - z[np.arange(len(y)), y]


def classification_rows(
    trained, path, name: str, *, batch_size: int = 64, text=None, text_pair=None, label=None
) -> RowOutputs:
    """RowOutputs of a classifier on a labelled file. details: labels, confusion matrix,
    per-class table, calibration (max probability vs right), confident mistakes, and the
    probabilities (numpy, "probs"; left out of report.json)."""
    labels = trained.labels
    split = read_eval_split(trained, path, text=text, text_pair=text_pair, label=label)
    feats = classification.featurize(split, trained.tokenizer, trained.max_length)
    logits = logits_for(trained.model, feats, batch_size, trained.tokenizer.pad_token_id)  # (N, C)
    metrics = score_logits(logits, split.y, labels)
    pred, probs = classification.predict(logits, labels.multi_label)
    nll = _row_nll(logits, split.y, labels.multi_label)
    texts = split.texts
    if split.pairs is not None:
        texts = [f"{a} ||| {b}" for a, b in zip(split.texts, split.pairs)]
    details: dict[str, Any] = {"labels": list(labels.names), "multi_label": labels.multi_label}
    details["per_class"] = metrics["per_class"]
    if labels.multi_label:
        y = split.y.astype(bool)
        correct = (y == pred.astype(bool)).all(axis=1)
        # every (row, label) decision: confidence in the side chosen
        details["calibration"] = calibration(
            np.maximum(probs, 1 - probs).ravel(), (y == pred.astype(bool)).ravel()
        )
        fn = multi_label_metric_fn(split.y, pred, nll)
    else:
        correct = pred == split.y
        details["confusion_matrix"] = metrics["confusion_matrix"]
        details["calibration"] = calibration(probs.max(axis=1), correct)
        mistakes = confident_mistakes(texts, split.y, probs, list(labels.names), k=10)
        for m in mistakes:  # the file's row number, as a user looks it up (1-based)
            m["row"] = split.rows[m["row"]] if split.rows else m["row"] + 1
        details["mistakes"] = mistakes
        fn = single_label_metric_fn(split.y, pred, nll, labels.num_labels)
    details["probs"] = probs  # (N, C), numpy: for slices, not written to report.json
    return RowOutputs(name, trained.task, len(split), fn, metrics, np.asarray(correct), details)


# ---------------------------------------------------------------- token classification


def token_rows(trained, path, name: str, *, batch_size: int = 64, text=None, label=None):
    """RowOutputs of a tagger: per-sentence entity counts (gold, predicted, exact hits, also
    per entity type), token accuracy counts and summed token loss, so metric_fn recomputes
    entity micro P/R/F1 over any multiset of sentences. Words cut by max_length count as "O"
    predictions, as evaluate_token_file scores them."""
    names = list(trained.labels.names)
    cols = trained.meta.columns
    cfg = DataConfig(
        train=str(path),
        text=text or cols.get("text") or "tokens",
        label=label or cols.get("label") or "ner_tags",
        label_names=names,
    )
    split = token_classification.read_split("eval", read_table(path), cfg, trained.labels)
    feats = token_classification.featurize(split, trained.tokenizer, trained.max_length)
    rows = token_logits(trained.model, feats, batch_size, trained.tokenizer.pad_token_id)
    n = len(split)
    gold_n, pred_n, hit_n, tok_ok, tok_n, nll, nll_n = (np.zeros(n) for _ in range(7))
    true_tags, pred_tags = [], []
    for k, (logits, lab) in enumerate(zip(rows, feats.labels)):
        lab = np.asarray(lab, dtype=np.int64)
        z = logits[lab != token_classification.IGNORE].astype(np.float64)  # (W, C): visible words
        gold_ids = lab[lab != token_classification.IGNORE]
        if len(gold_ids):
            m = z.max(axis=-1)
            lse = m + np.log(np.exp(z - m[:, None]).sum(axis=-1))
            nll[k], nll_n[k] = float((lse - z[np.arange(len(gold_ids)), gold_ids]).sum()), len(z)
        gold = [names[i] for i in split.tags[k]]
        pred = [names[i] for i in z.argmax(axis=-1)] if len(z) else []
        pred += ["O"] * (len(gold) - len(pred))  # words cut by max_length: predicted "O"
        true_tags.append(gold)
        pred_tags.append(pred)
        g, p = set(bio_entities(gold)), set(bio_entities(pred))
        gold_n[k], pred_n[k], hit_n[k] = len(g), len(p), len(g & p)
        tok_ok[k], tok_n[k] = sum(a == b for a, b in zip(gold, pred)), len(gold)
    metrics = entity_metrics(true_tags, pred_tags)
    metrics = {"loss": float(nll.sum() / max(nll_n.sum(), 1)), **metrics}

    def metric_fn(idx: np.ndarray) -> dict[str, float]:
        idx = np.asarray(idx, dtype=np.int64)
        tp, npred, ngold = hit_n[idx].sum(), pred_n[idx].sum(), gold_n[idx].sum()
        p, r, f = _prf(tp, npred, ngold)
        return {
            "f1": float(f),
            "precision": float(p),
            "recall": float(r),
            "accuracy": float(_safe_div(tok_ok[idx].sum(), tok_n[idx].sum())),
            "loss": float(_safe_div(nll[idx].sum(), nll_n[idx].sum())),
        }

    details = {"labels": names, "per_type": metrics["per_type"]}
    return RowOutputs(name, trained.task, n, metric_fn, metrics, None, details)


# ---------------------------------------------------------------- masked LM


def mlm_rows(trained, path, name: str, *, batch_size: int = 64, text=None, seed: int = 0):
    """RowOutputs of a masked LM: per document, summed masked-token loss, hits and count.

    The file is cut into blocks exactly as `score_mlm_features` cuts and masks it (same
    blocks, batches and seeded masks), and each masked token is credited to the document it
    came from, so on all rows the numbers equal the plain evaluation's. Blank rows are not
    documents: `rows` maps each output row to its file row."""
    import math

    import torch
    import torch.nn.functional as F

    cols = trained.meta.columns
    docs = read_texts("eval", path, text or cols.get("text") or "text")
    feats = mlm.featurize(docs, trained.tokenizer, trained.max_length)
    owner = _block_owners(docs, trained.tokenizer, trained.max_length)  # per block: (T,) doc ids
    n = len(docs)
    loss_sum, hits, count = np.zeros(n), np.zeros(n), np.zeros(n)
    model = trained.model
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    pad_id = trained.tokenizer.pad_token_id
    with torch.inference_mode():
        for index in sorted_batches(feats.lengths, batch_size):
            index = np.sort(index)
            batch = mlm.collate(feats, index, pad_id, generator=generator)
            labels = batch.pop("labels")  # (B, T), -100 where not masked
            logits = model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu()
            for j, i in enumerate(index):
                length = len(owner[i])
                chosen = (labels[j] != -100).numpy()[:length]  # (L,): padding is never masked
                if not chosen.any():
                    continue
                z, t = logits[j, :length][chosen], labels[j, :length][chosen]  # (M, V), (M,)
                ce = F.cross_entropy(z, t, reduction="none").numpy()
                ok = (z.argmax(dim=-1) == t).numpy()
                who = owner[i][chosen]
                np.add.at(loss_sum, who, ce)
                np.add.at(hits, who, ok)
                np.add.at(count, who, 1)

    def metric_fn(idx: np.ndarray) -> dict[str, float]:
        idx = np.asarray(idx, dtype=np.int64)
        tokens = count[idx].sum()
        loss = float(loss_sum[idx].sum() / tokens) if tokens else float("nan")
        return {
            "loss": loss,
            "perplexity": (math.exp(loss) if loss < 700 else math.inf) if tokens else float("nan"),
            "masked_accuracy": float(hits[idx].sum() / tokens) if tokens else float("nan"),
        }

    metrics = {**metric_fn(np.arange(n)), "tokens": int(count.sum()), "n": n}
    details = {"rows": list(docs.rows), "documents": n}
    return RowOutputs(name, trained.task, n, metric_fn, metrics, None, details)


def _block_owners(docs, tokenizer, max_length: int | None) -> list[np.ndarray]:
    """Per block of mlm.featurize, the document index of every position (T,), the wrapping
    [CLS]/[SEP] and the separators credited to the document before them."""
    start, end = _boundary_ids(tokenizer)
    head, tail = int(start is not None), int(end is not None)
    with quiet_transformers():
        ids = tokenizer(docs.texts, add_special_tokens=False, truncation=False)["input_ids"]
    if max_length is None:
        return [np.full(head + len(x) + tail, d, np.int64) for d, x in enumerate(ids)]
    stream: list[int] = []
    for d, x in enumerate(ids):
        stream.extend([d] * (len(x) + tail))
    if tail and stream:
        stream.pop()
    body = max_length - head - tail
    out = []
    for i in range(0, len(stream), body):
        part = stream[i : i + body]
        out.append(np.asarray(part[:1] * head + part + part[-1:] * tail, np.int64))
    return out
