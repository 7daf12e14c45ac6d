"""Token classification (NER): one tag per word, BIO/IOB2 tags as in CoNLL-2003.

Rows hold a list of words and a list of tags of the same length. The model sees sub-word
tokens; only the first sub-token of each word carries the word's tag, the others (and the
special tokens) carry -100 so the loss and the metrics skip them. That is the convention
the entity-level metrics (seqeval semantics) assume: one prediction per word.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tunelab.config.schema import DataConfig, RunConfig
from tunelab.data import LabelSpace, read_table, require_columns
from tunelab.data.batching import Features
from tunelab.errors import DataError, ModelSourceError
from tunelab.models.tokenizers import encode_uncut
from tunelab.tasks.base import Task
from tunelab.tasks.classification import TaskData

NAME = "token-classification"
DEFAULT_METRIC = "f1"
DEFAULT_METRIC_WHY = "entity-level F1 (seqeval semantics) is what NER is judged by"
IGNORE = -100  # label of sub-tokens that are not scored (PyTorch's cross-entropy default)
COMPARE_COLUMNS = ("f1", "precision", "recall", "accuracy")  # for the report's results table


@dataclass
class TokenSplit:
    """One split: words and tag ids per row, and each row's number in its file."""

    name: str
    file: str
    words: list[list[str]]
    tags: list[list[int]]
    rows: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.words)

    @property
    def y(self) -> list[list[int]]:
        """The tags, under the name runs/train.py passes to `class_weights` for every task."""
        return self.tags


def _as_list(v: object) -> list | None:
    """A list cell as a list; JSON-looking strings (CSV/TSV files) are parsed; else None."""
    if isinstance(v, str) and v.lstrip().startswith("["):
        try:
            v = json.loads(v)
        except json.JSONDecodeError:
            return None
    if isinstance(v, (list, tuple, np.ndarray)):
        return list(v)
    return None


def _cells(df: pd.DataFrame, cfg: DataConfig) -> list[tuple[int, list[str], list]]:
    """(row, words, raw tags) per row, with the shape checks that need no tag set."""
    file = str(df.attrs.get("source", "<data>"))
    require_columns(df, file, [cfg.text, cfg.label])
    out = []
    for r, w, t in zip(df.index, df[cfg.text].tolist(), df[cfg.label].tolist(), strict=True):
        r, words, tags = int(r), _as_list(w), _as_list(t)

        def fail(message: str, column: str = cfg.text, row: int = r) -> DataError:
            return DataError(file, message, row=row, column=column)

        if words is None:
            raise fail(f"expected a list of words, got {type(w).__name__} {str(w)[:40]!r}")
        if tags is None:
            raise fail(f"expected a list of tags, got {type(t).__name__}", cfg.label)
        if not words:
            raise fail("empty list of words")
        bad = [i for i, x in enumerate(words) if not isinstance(x, str) or not x.strip()]
        if bad:
            raise fail(f"word {bad[0]} is {words[bad[0]]!r}, not a word")
        if len(words) != len(tags):
            raise fail(f"{len(words)} words but {len(tags)} tags", cfg.label)
        out.append((r, words, tags))
    return out


def _tag_space(train: list, file: str, cfg: DataConfig) -> LabelSpace:
    """Tags seen in training (sorted, "O" first), or `label_names` when the config gives them."""
    if cfg.label_names is not None:
        return LabelSpace(list(cfg.label_names), multi_label=False)
    seen = {t for _, _, tags in train for t in tags}
    ints = [t for t in seen if not isinstance(t, str)]
    if ints:
        raise DataError(
            file,
            f"tags are not strings (e.g. {ints[0]!r}); integer tag ids need data.label_names",
            column=cfg.label,
        )
    if len(seen) < 2:
        raise DataError(
            file, f"needs at least 2 distinct tags, found {sorted(seen)}", column=cfg.label
        )
    return LabelSpace(sorted(seen, key=lambda t: (t != "O", t)), multi_label=False)


def _encode(cells: list, file: str, cfg: DataConfig, space: LabelSpace, known: str) -> list:
    """Tag ids per row; an unknown tag is an error naming the row and the tag."""
    ids = {n: i for i, n in enumerate(space.names)}
    out = []
    for r, _, tags in cells:
        row = []
        for t in tags:
            if isinstance(t, str):
                i = ids.get(t)
            elif isinstance(t, (int, np.integer)) and not isinstance(t, bool):
                i = int(t) if cfg.label_names is not None and 0 <= t < space.num_labels else None
            else:
                i = None
            if i is None:
                raise DataError(
                    file,
                    f"tag {t!r} is not one of the {space.num_labels} tags of {known}: "
                    f"{', '.join(space.names[:12])}",
                    row=r,
                    column=cfg.label,
                )
            row.append(i)
        out.append(row)
    return out


def read_split(name: str, df: pd.DataFrame, cfg: DataConfig, labels: LabelSpace) -> TokenSplit:
    """Validate and encode one frame against a known tag set (also for `tunelab eval`)."""
    file = str(df.attrs.get("source", name))
    cells = _cells(df, cfg)
    tags = _encode(cells, file, cfg, labels, "the model")
    return TokenSplit(name, file, [w for _, w, _ in cells], tags, [r for r, _, _ in cells])


def load_data(cfg: RunConfig) -> TaskData:
    """Read train/validation/test, take the tag set from train, split off validation if absent."""
    d = cfg.data
    frames = {"train": read_table(d.train)}
    for name in ("validation", "test"):
        if getattr(d, name):
            frames[name] = read_table(getattr(d, name))
    if d.max_train_rows:
        attrs = frames["train"].attrs
        frames["train"] = frames["train"].head(d.max_train_rows)
        frames["train"].attrs.update(attrs)
    cells = {name: _cells(df, d) for name, df in frames.items()}
    files = {name: str(df.attrs["source"]) for name, df in frames.items()}
    space = _tag_space(cells["train"], files["train"], d)
    known = "data.label_names" if d.label_names else f"the training data ({files['train']})"
    splits = {
        name: TokenSplit(
            name,
            files[name],
            [w for _, w, _ in c],
            _encode(c, files[name], d, space, known),
            [r for r, _, _ in c],
        )
        for name, c in cells.items()
    }
    from_train = "validation" not in splits
    if from_train:
        splits["train"], splits["validation"] = _hold_out(splits["train"], d.validation_size, cfg)
    return TaskData(labels=space, splits=splits, validation_from_train=from_train)


def _hold_out(split: TokenSplit, size: float, cfg: RunConfig) -> tuple[TokenSplit, TokenSplit]:
    """Seeded random (kept, held-out) parts; both keep file order and row numbers."""
    n = len(split)
    if n < 2:
        raise DataError(
            split.file, f"too few rows ({n}) to split off validation; give data.validation"
        )
    n_held = min(max(1, round(n * size)), n - 1)
    perm = np.random.default_rng(cfg.train.seed).permutation(n)
    held, kept = np.sort(perm[:n_held]), np.sort(perm[n_held:])

    def part(name: str, idx: np.ndarray) -> TokenSplit:
        return TokenSplit(
            name,
            split.file,
            [split.words[i] for i in idx],
            [split.tags[i] for i in idx],
            [split.rows[i] for i in idx],
        )

    return part("train", kept), part("validation", held)


def encode_words(tokenizer, words: list[list[str]], max_length: int | None):
    """Tokenize pre-split words; the result's `word_ids(i)` maps sub-tokens back to words."""
    if not getattr(tokenizer, "is_fast", False):
        raise ModelSourceError(
            f"{type(tokenizer).__name__} is a slow tokenizer; token classification needs a fast "
            "one (it maps sub-tokens to words)",
        )
    if max_length is None:  # uncut: lengths to choose max_length from
        return encode_uncut(tokenizer, words, is_split_into_words=True)
    return tokenizer(
        words, is_split_into_words=True, truncation=True, max_length=max_length, padding=False
    )


def first_subtokens(word_ids: list[int | None]) -> list[int]:
    """Positions of each word's first sub-token, in word order (words cut off are absent)."""
    out, prev = [], None
    for pos, w in enumerate(word_ids):
        if w is not None and w != prev:
            out.append(pos)
        prev = w
    return out


def featurize(split: TokenSplit, tokenizer, max_length: int | None) -> Features:
    """Token ids per row and per-token labels: the word's tag on its first sub-token, -100
    elsewhere. `labels` is an object array of int lists (ragged; collate pads with -100)."""
    enc = encode_words(tokenizer, split.words, max_length)
    labels = np.empty(len(split), dtype=object)
    for i, tags in enumerate(split.tags):
        word_ids = enc.word_ids(i)
        row = [IGNORE] * len(word_ids)
        for pos in first_subtokens(word_ids):
            row[pos] = tags[word_ids[pos]]
        labels[i] = row
    columns = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
    return Features(columns=columns, labels=labels)


def load_token_classifier(
    source, label_names: list[str], *, dropout: float | None = None, tokenizer=None
):
    """A pretrained encoder with a fresh per-token head for `label_names`."""
    from transformers import AutoModelForTokenClassification

    from tunelab.models.loading import load_with_head

    return load_with_head(
        source,
        AutoModelForTokenClassification,
        label_names=label_names,
        dropout=dropout,
        tokenizer=tokenizer,
    )


def load_model(source, data: TaskData, cfg: RunConfig, tokenizer):
    return load_token_classifier(
        source, data.labels.names, dropout=cfg.train.dropout, tokenizer=tokenizer
    )


def class_weights(y, labels: LabelSpace, mode: str) -> None:
    """No class weights for tags yet: "O" dominates, but entity F1 ignores it anyway."""
    return None


def loss(logits, labels, weights=None):
    """Cross-entropy over every labelled token; -100 (sub-tokens, specials, padding) skipped."""
    import torch.nn.functional as F

    logits = logits.float()  # (B, T, C); loss in fp32 under autocast
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        labels.reshape(-1),
        weight=weights,
        ignore_index=IGNORE,
    )


def predict(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(tag ids, probabilities) per token: argmax of softmax over the last axis."""
    z = logits.astype(np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    probs = z / z.sum(axis=-1, keepdims=True)
    return probs.argmax(axis=-1), probs


TASK = Task(
    name=NAME,
    head_kind="token",
    auto_model="AutoModelForTokenClassification",
    peft_task_type="TOKEN_CLS",
    default_metric=DEFAULT_METRIC,
    default_metric_why=DEFAULT_METRIC_WHY,
    labelled=True,
    pipeline_tag="token-classification",
    card_use="tagging the entity types it was trained on, word by word",
    serve_kind="entities",
    architectures=("ForTokenClassification",),
    load_data=load_data,
    featurize=featurize,
    load_model=load_model,
    loss=loss,
    read_split=read_split,
    predict=predict,
    class_weights=class_weights,
    compare_columns=COMPARE_COLUMNS,
)
