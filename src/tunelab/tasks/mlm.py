"""Masked-LM continued pretraining for encoders (`task: mlm`).

A user adapts an encoder (BERT family) to domain text, then fine-tunes a classifier from the
saved `model/` folder. Documents are tokenized, joined with [SEP] and cut into fixed-size
blocks (no padding waste); masking happens at collate time, so every epoch sees new masks.
Training masks with torch's global RNG, which the loop checkpoints (exact resume);
evaluation masks with a seeded local generator (comparable scores across evaluations).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tunelab.config.schema import RunConfig
from tunelab.data.batching import Features
from tunelab.data.batching import collate as pad_collate
from tunelab.errors import ConfigError, DataError
from tunelab.models.tokenizers import encode_uncut
from tunelab.tasks.base import Task
from tunelab.tasks.classification import TaskData
from tunelab.tasks.mlm_data import TextChunks, read_texts
from tunelab.tasks.mlm_model import head_modules, keep_pooler, load_model

NAME = "mlm"
DEFAULT_METRIC = "perplexity"
DEFAULT_METRIC_WHY = "masked-token perplexity on held-out text; lower is better"
DEFAULT_MAX_LENGTH = 128
MASK_PROBABILITY = 0.15
SCORE_BASE_MODEL = True  # results compare with the untouched encoder's perplexity

__all__ = [
    "TextChunks",
    "MLMFeatures",
    "load_data",
    "featurize",
    "collate",
    "mask_tokens",
    "load_model",
    "keep_pooler",
    "head_modules",
]


@dataclass
class MLMFeatures(Features):
    """Blocks of token ids plus what masking needs (the tokenizer is not at hand in collate)."""

    mask_id: int = 0
    special_ids: tuple[int, ...] = ()
    vocab_size: int = 0
    probability: float = MASK_PROBABILITY
    meta: dict = field(default_factory=dict)


def load_data(cfg: RunConfig) -> TaskData:
    """Read train (and validation/test when given); hold out `validation_size` of train
    documents (seeded) when there is no validation file. No labels: `TaskData.labels` is None."""
    d = cfg.data
    splits = {"train": read_texts("train", d.train, d.text)}
    for name in ("validation", "test"):
        path = getattr(d, name)
        if path:
            splits[name] = read_texts(name, path, d.text)
    train = splits["train"]
    if d.max_train_rows:
        n = d.max_train_rows
        train = TextChunks("train", train.file, train.texts[:n], train.rows[:n])
    from_train = "validation" not in splits
    if from_train:
        train, splits["validation"] = _hold_out(train, d.validation_size, cfg.train.seed)
    splits["train"] = train
    return TaskData(labels=None, splits=splits, validation_from_train=from_train)


def _hold_out(split: TextChunks, size: float, seed: int) -> tuple[TextChunks, TextChunks]:
    """Random documents (seeded) to validation; both keep file order, so blocks read naturally."""
    n = len(split)
    if n < 2:
        raise DataError(
            split.file,
            f"{n} document; at least 2 are needed to hold out validation text "
            "(or give data.validation)",
        )
    n_val = min(n - 1, max(1, round(n * size)))
    held = np.zeros(n, dtype=bool)
    held[np.random.default_rng(seed).permutation(n)[:n_val]] = True

    def take(name: str, keep: np.ndarray) -> TextChunks:
        idx = np.flatnonzero(keep)
        return TextChunks(
            name, split.file, [split.texts[i] for i in idx], [split.rows[i] for i in idx]
        )

    return take("train", ~held), take("validation", held)


def _boundary_ids(tokenizer) -> tuple[int | None, int | None]:
    """(start, end) ids of a block: [CLS]/[SEP] for BERT-style tokenizers, else BOS/EOS."""
    cls = tokenizer.cls_token_id
    sep = tokenizer.sep_token_id
    return (
        cls if cls is not None else tokenizer.bos_token_id,
        sep if sep is not None else tokenizer.eos_token_id,
    )


def featurize(split: TextChunks, tokenizer, max_length: int | None) -> MLMFeatures:
    """Token blocks of `max_length`: documents joined with [SEP], cut, each block wrapped in
    [CLS] ... [SEP] (the last block may be shorter).

    `max_length=None` returns one row per document instead (runs/train.py measures lengths so).
    """
    if tokenizer.mask_token_id is None:
        raise ConfigError(
            "task",
            f"mlm needs a tokenizer with a mask token; {type(tokenizer).__name__} has none "
            "(use an encoder such as BERT or RoBERTa)",
        )
    start, end = _boundary_ids(tokenizer)
    head = [start] if start is not None else []
    tail = [end] if end is not None else []
    # documents longer than the model are fine: they are cut into blocks below
    docs = encode_uncut(tokenizer, split.texts, add_special_tokens=False)["input_ids"]
    if max_length is None:
        rows = [head + ids + tail for ids in docs]
    else:
        body = max_length - len(head) - len(tail)
        if body < 1:
            raise ConfigError(
                "data.max_length", "too small for a masked-LM block", max_length, has_value=True
            )
        stream: list[int] = []
        for ids in docs:
            stream.extend(ids)
            stream.extend(tail)  # document separator
        if tail and stream:
            stream.pop()  # the last block's own [SEP] ends the text
        rows = [head + stream[i : i + body] + tail for i in range(0, len(stream), body)]
    columns = {"input_ids": rows, "attention_mask": [[1] * len(r) for r in rows]}
    if "token_type_ids" in tokenizer.model_input_names:
        columns["token_type_ids"] = [[0] * len(r) for r in rows]
    return MLMFeatures(
        columns=columns,
        labels=None,
        mask_id=int(tokenizer.mask_token_id),
        special_ids=tuple(sorted(set(tokenizer.all_special_ids))),
        vocab_size=int(tokenizer.vocab_size),
        meta={"documents": len(docs), "tokens": sum(len(ids) for ids in docs)},
    )


def mask_tokens(
    input_ids, maskable, mask_id: int, vocab_size: int, probability: float = 0.15, generator=None
):
    """BERT masking of (B, T) ids: `probability` of the maskable positions are chosen; of those
    80% become the mask token, 10% a random token, 10% stay. Returns (inputs, labels) with
    labels = original id at chosen positions and -100 elsewhere.

    A row with maskable tokens but none chosen gets its lowest-draw position chosen, so a
    batch always has a loss (short last blocks would otherwise give NaN). Random numbers come
    from `generator` when given (evaluation), else torch's global RNG (training: checkpointed).
    """
    import torch

    shape, dev = input_ids.shape, input_ids.device
    draw = torch.rand(shape, generator=generator, device=dev)  # (B, T)
    chosen = (draw < probability) & maskable
    missing = ~chosen.any(dim=1) & maskable.any(dim=1)
    if missing.any():
        pick = torch.where(maskable, draw, torch.full_like(draw, 2.0)).argmin(dim=1)
        rows = missing.nonzero().squeeze(1)
        chosen[rows, pick[rows]] = True
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    action = torch.rand(shape, generator=generator, device=dev)
    random_ids = torch.randint(vocab_size, shape, generator=generator, device=dev)
    inputs = input_ids.clone()
    inputs[chosen & (action < 0.8)] = mask_id
    swap = chosen & (action >= 0.8) & (action < 0.9)
    inputs[swap] = random_ids[swap]
    return inputs, labels


def mask_batch(batch: dict, features: MLMFeatures, pad_id: int, generator=None) -> dict:
    """Mask a padded batch in place of its input_ids and add `labels`; never special/pad."""
    import torch

    if not isinstance(features, MLMFeatures):
        raise TypeError("mlm collate needs the MLMFeatures that mlm.featurize returns")
    ids = batch["input_ids"]  # (B, T)
    maskable = ~torch.isin(ids, torch.tensor(features.special_ids, dtype=ids.dtype)) & (
        ids != pad_id
    )
    if "attention_mask" in batch:
        maskable &= batch["attention_mask"].bool()
    batch["input_ids"], batch["labels"] = mask_tokens(
        ids, maskable, features.mask_id, features.vocab_size, features.probability, generator
    )
    return batch


def collate(features: MLMFeatures, index: np.ndarray, pad_id: int, generator=None) -> dict:
    """Pad rows `index` (data.batching.collate), then mask them; the loop's collate hook."""
    return mask_batch(pad_collate(features, index, pad_id), features, pad_id, generator)


def class_weights(y, labels, mode: str) -> None:
    """No classes, so no class weights."""
    return None


def loss(logits, labels, weights=None):
    """Mean cross-entropy over the masked positions of (B, T, V) logits (labels -100 elsewhere).

    Only the masked rows are cast to fp32: the full (B, T, V) tensor in fp32 would be large.
    """
    import torch.nn.functional as F

    chosen = labels != -100  # (B, T)
    picked = logits[chosen].float()  # (M, V)
    if picked.shape[0] == 0:
        return logits.sum() * 0.0  # no masked token: zero loss, graph kept
    return F.cross_entropy(picked, labels[chosen])


def choose_max_length(lengths: np.ndarray, model_max: int) -> tuple[int, str]:
    """Block size when data.max_length is unset: 128 (capped by the model), whatever the
    document lengths, because documents are packed into blocks, not padded or truncated."""
    chosen = min(DEFAULT_MAX_LENGTH, model_max)
    return chosen, f"masked-LM blocks pack documents; {chosen} tokens is BERT's usual block size"


TASK = Task(
    name=NAME,
    head_kind="masked",
    auto_model="AutoModelForMaskedLM",
    peft_task_type=None,
    default_metric=DEFAULT_METRIC,
    default_metric_why=DEFAULT_METRIC_WHY,
    score_base_model=SCORE_BASE_MODEL,
    pipeline_tag="fill-mask",
    card_use="filling masked words, or as a domain-adapted encoder to fine-tune further",
    serve_kind=None,
    architectures=("ForMaskedLM",),
    load_data=load_data,
    featurize=featurize,
    load_model=load_model,
    loss=loss,
    collate=collate,
    class_weights=class_weights,
    choose_max_length=choose_max_length,
    head_modules=head_modules,
)
