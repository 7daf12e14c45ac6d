"""Text classification: single-label, multi-label, and sentence pairs."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from tunelab.config.schema import DataConfig, RunConfig
from tunelab.data import (
    LabelSpace,
    discover_labels,
    encode_labels,
    label_counts,
    read_table,
    require_columns,
    stratified_split,
    text_column,
)
from tunelab.data.batching import Features
from tunelab.data.class_weights import balanced_weights, rare_class_warnings
from tunelab.models.tokenizers import encode_uncut
from tunelab.tasks.base import Task

NAME = "classification"
DEFAULT_METRIC = "f1_macro"
DEFAULT_METRIC_WHY = "macro F1 weighs every class equally, so it is not fooled by imbalance"


@dataclass
class TextSplit:
    """One split as the task sees it: texts (and pair texts), label ids, source rows."""

    name: str
    file: str
    texts: list[str]
    pairs: list[str] | None
    y: np.ndarray  # (N,) int64 ids, or (N, C) float32 multi-hot
    rows: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class TaskData:
    labels: LabelSpace
    splits: dict[str, TextSplit]  # "train", "validation", and "test" when given
    validation_from_train: bool = False


def _columns(cfg: DataConfig) -> list[str]:
    return [c for c in (cfg.text, cfg.text_pair, cfg.label) if c]


def read_split(name: str, df, cfg: DataConfig, labels: LabelSpace) -> TextSplit:
    file = df.attrs.get("source", name)
    pairs = text_column(df, file, cfg.text_pair) if cfg.text_pair else None
    return TextSplit(
        name=name,
        file=file,
        texts=text_column(df, file, cfg.text),
        pairs=pairs,
        y=encode_labels(df, cfg.label, labels),
        rows=[int(r) for r in df.index],
    )


def load_data(cfg: RunConfig) -> TaskData:
    """Read train/validation/test, discover labels on them, split off validation if absent."""
    d = cfg.data
    frames = {"train": read_table(d.train)}
    for name in ("validation", "test"):
        path = getattr(d, name)
        if path:
            frames[name] = read_table(path)
    if d.max_train_rows:
        attrs = frames["train"].attrs
        frames["train"] = frames["train"].head(d.max_train_rows)
        frames["train"].attrs.update(attrs)
    for df in frames.values():
        require_columns(df, df.attrs["source"], _columns(d))
    labels = discover_labels(list(frames.values()), d.label, d.label_names)
    from_train = "validation" not in frames
    if from_train:
        y = encode_labels(frames["train"], d.label, labels)
        kept, held, _, _ = stratified_split(frames["train"], y, d.validation_size, cfg.train.seed)
        frames["train"], frames["validation"] = kept, held
    splits = {name: read_split(name, df, d, labels) for name, df in frames.items()}
    return TaskData(labels=labels, splits=splits, validation_from_train=from_train)


def featurize(split: TextSplit, tokenizer, max_length: int | None) -> Features:
    """Tokenize without padding (batches pad dynamically); keep labels alongside.
    `max_length=None`: uncut, to measure lengths (runs/train.py chooses max_length from them)."""
    if max_length is None:
        enc = encode_uncut(tokenizer, split.texts, split.pairs)
    else:
        enc = tokenizer(
            split.texts, split.pairs, truncation=True, max_length=max_length, padding=False
        )
    columns = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
    return Features(columns=columns, labels=split.y)


def load_model(source, data: TaskData, cfg: RunConfig, tokenizer):
    from tunelab.models.loading import load_sequence_classifier

    return load_sequence_classifier(
        source,
        data.labels.names,
        multi_label=data.labels.multi_label,
        dropout=cfg.train.dropout,
        tokenizer=tokenizer,
    )


def class_weights(y: np.ndarray, labels: LabelSpace, mode: str) -> np.ndarray | None:
    """Inverse-frequency weights (sklearn's "balanced"), or None when not wanted.

    `auto` turns them on when the largest class outnumbers the smallest by more than 1.5x;
    single-label weights follow `data.class_weights.balanced_weights` (a class under 5 rows
    keeps 1.0, all capped at 10); for multi-label they are per-label positive weights
    (negatives / positives, capped at 10). Warns on stderr about classes under 5 rows.
    """
    for warning in rare_class_warnings(label_counts(y, labels)):
        print(f"warning: {warning}", file=sys.stderr)
    if mode == "none":
        return None
    if labels.multi_label:
        pos = y.sum(axis=0)
        neg = len(y) - pos
        ratio = np.clip(neg / np.maximum(pos, 1), 1.0, 10.0)
        return ratio.astype(np.float32) if mode == "balanced" or ratio.max() > 1.5 else None
    counts = np.bincount(y, minlength=labels.num_labels).astype(np.float64)
    present = counts[counts > 0]
    if mode == "auto" and present.max() <= 1.5 * present.min():
        return None
    return balanced_weights(counts)


def loss(logits, labels, weights=None):
    """Cross-entropy (single-label) or binary cross-entropy per label (multi-label)."""
    import torch.nn.functional as F

    logits = logits.float()  # (B, C); loss in fp32 under autocast
    if labels.dim() == 2:
        return F.binary_cross_entropy_with_logits(logits, labels.float(), pos_weight=weights)
    return F.cross_entropy(logits, labels, weight=weights)


def predict(
    logits: np.ndarray, multi_label: bool, threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """(ids, probabilities): argmax of softmax, or sigmoid > threshold per label."""
    logits = logits.astype(np.float64)
    if multi_label:
        probs = 1.0 / (1.0 + np.exp(-logits))
        return (probs > threshold).astype(np.float32), probs
    z = logits - logits.max(axis=-1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    return probs.argmax(axis=-1), probs


TASK = Task(
    name=NAME,
    head_kind="sequence",
    auto_model="AutoModelForSequenceClassification",
    peft_task_type="SEQ_CLS",
    default_metric=DEFAULT_METRIC,
    default_metric_why=DEFAULT_METRIC_WHY,
    labelled=True,
    pipeline_tag="text-classification",
    card_use="labelling texts with the classes it was trained on",
    serve_kind="classify",
    architectures=("ForSequenceClassification",),
    load_data=load_data,
    featurize=featurize,
    load_model=load_model,
    loss=loss,
    read_split=read_split,
    predict=predict,
    class_weights=class_weights,
)
