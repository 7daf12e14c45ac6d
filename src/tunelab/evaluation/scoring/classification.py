"""Score a classifier on a split: loss plus the classification metrics."""

from __future__ import annotations

import numpy as np

from tunelab.data.batching import Features
from tunelab.data.labels import LabelSpace
from tunelab.inference.forward import logits_for
from tunelab.metrics.classification import classification_metrics
from tunelab.tasks import classification as task


def score_logits(logits: np.ndarray, y: np.ndarray, labels: LabelSpace) -> dict:
    """Unweighted loss plus the classification metrics of logits (N, C) against labels."""
    import torch

    loss = task.loss(torch.from_numpy(logits), torch.from_numpy(y))
    pred, probs = task.predict(logits, labels.multi_label)
    metrics = classification_metrics(
        y, pred, labels.names, multi_label=labels.multi_label, probs=probs
    )
    return {"loss": float(loss), **metrics}


def score_features(
    model, features: Features, labels: LabelSpace, batch_size: int, pad_id: int
) -> dict:
    """Loss and metrics of `model` on tokenized rows with labels."""
    logits = logits_for(model, features, batch_size, pad_id)
    return score_logits(logits, features.labels, labels)


def read_eval_split(trained, path, *, text=None, text_pair=None, label=None, rows=None):
    """A labelled file read the way `trained` was trained (columns from its tunelab.json unless
    given; the first `rows` rows when set), as its task's split."""
    from tunelab.config.schema import DataConfig
    from tunelab.data import read_table, require_columns
    from tunelab.tasks import get_task

    cols = trained.meta.get("columns", {})
    df = read_table(path)
    cfg = DataConfig(
        train=str(path),
        text=text or cols.get("text", "text"),
        text_pair=text_pair if text_pair is not None else cols.get("text_pair"),
        label=label or cols.get("label", "label"),
        target=cols.get("target", "target"),  # seq2seq
        references=cols.get("references") if cols.get("references") in df.columns else None,
        prefix=cols.get("prefix"),
        packing=trained.meta.get("packing", True),  # causal-lm: rows as the model trained on
    )
    needed = [cfg.text, cfg.text_pair] + ([cfg.label] if trained.labels is not None else [])
    if trained.task != "causal-lm":  # causal-lm tells chat/instruction/text rows by their keys
        require_columns(df, str(path), [c for c in needed if c])
    if rows is not None:
        attrs = df.attrs
        df = df.head(rows)
        df.attrs.update(attrs)
    return get_task(trained.task).read_split("eval", df, cfg, trained.labels)


def evaluate_file(
    trained, path, *, text=None, text_pair=None, label=None, batch_size: int = 64
) -> dict:
    """Metrics of a trained model on a labelled file; columns default to those it trained on.
    The saved model's task (tunelab.json) decides how rows are read and scored."""
    from tunelab.evaluation.scoring import scorer
    from tunelab.tasks import get_task

    if trained.task == "mlm":  # plain texts, masked as training's validation masks them
        from tunelab.evaluation.report.rows_label import mlm_rows

        return mlm_rows(trained, path, "model", batch_size=batch_size, text=text).metrics
    split = read_eval_split(trained, path, text=text, text_pair=text_pair, label=label)
    if trained.meta.get("generation") and hasattr(split, "settings"):  # seq2seq: decode as trained
        from tunelab.config.generation import GenerationConfig

        split.settings.generation = GenerationConfig(**trained.meta["generation"])
    feats = get_task(trained.task).featurize(split, trained.tokenizer, trained.max_length)
    pad_id = trained.tokenizer.pad_token_id
    return scorer(trained.task)(trained.model, feats, trained.labels, batch_size, pad_id)
