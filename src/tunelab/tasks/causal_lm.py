"""Causal LM: chat/instruction SFT and raw-text continued pretraining (next-token prediction).

Rows are detected as chat `messages` (or ShareGPT `conversations`), `instruction`/`input`/
`output`, `prompt`/`completion`, or raw `text` (also `.txt` files); the model's own chat
template renders them, and only assistant/completion tokens (each answer ending in EOS) are
trained. Training sequences are packed several examples per sequence, with per-example
positions and a block-diagonal mask so nothing leaks between them (tasks/packing.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tunelab.config.schema import RunConfig
from tunelab.data.batching import Features
from tunelab.errors import DataError
from tunelab.tasks.base import Task
from tunelab.tasks.causal_lm_data import detect_file_format, encode_row, render, to_messages
from tunelab.tasks.classification import TaskData
from tunelab.tasks.packing import collate_packed, one_per_row, pack, truncate_all

NAME = "causal-lm"
DEFAULT_METRIC = "loss"
DEFAULT_METRIC_WHY = "validation loss on the trained (assistant) tokens; lower is better"
SCORE_BASE_MODEL = True  # the base model's loss on the same answers is the comparison


@dataclass
class ChatSplit:
    name: str
    file: str
    records: list[dict]
    fmt: str
    rows: list[int] = field(default_factory=list)
    too_long: str = "truncate"  # data.too_long
    packing: bool = True  # data.packing

    def __len__(self) -> int:
        return len(self.records)


@dataclass
class PackedFeatures(Features):
    packed: list[dict] = field(default_factory=list)


def _read(path: str) -> tuple[list[dict], list[int]]:
    p = Path(path)
    if p.suffix == ".txt":
        if not p.is_file():
            raise DataError(
                path, "file not found; check the path (relative to the current directory)"
            )
        try:
            lines = p.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise DataError(path, f"not UTF-8 text (byte {exc.start})") from None
        kept = [(i + 1, t) for i, t in enumerate(lines) if t.strip()]
        if not kept:
            raise DataError(path, "no text (the file is empty)")
        return [{"text": t} for _, t in kept], [i for i, _ in kept]
    from tunelab.data.readers import read_table

    df = read_table(path)
    return df.to_dict(orient="records"), [int(i) for i in df.index]


def read_split(name: str, df_or_path, cfg, labels=None) -> ChatSplit:
    """A split from a file path (or an already read DataFrame), its format detected."""
    if isinstance(df_or_path, (str, Path)):
        file = str(df_or_path)
        records, rows = _read(file)
    else:
        file = df_or_path.attrs.get("source", name)
        records, rows = df_or_path.to_dict(orient="records"), [int(i) for i in df_or_path.index]
    fmt = detect_file_format(records, None, file=file)
    return ChatSplit(name, file, records, fmt, rows, cfg.too_long, cfg.packing)


def load_data(cfg: RunConfig) -> TaskData:
    d = cfg.data
    splits = {"train": read_split("train", d.train, d)}
    if d.max_train_rows:
        s = splits["train"]
        s.records, s.rows = s.records[: d.max_train_rows], s.rows[: d.max_train_rows]
    for name in ("validation", "test"):
        if getattr(d, name):
            splits[name] = read_split(name, getattr(d, name), d)
    from_train = "validation" not in splits
    if from_train:
        train = splits["train"]
        if len(train) < 2:
            raise DataError(
                train.file, "too few rows to hold out a validation set; give data.validation"
            )
        order = list(range(len(train)))
        random.Random(cfg.train.seed).shuffle(order)
        held = set(order[: max(1, int(round(d.validation_size * len(train))))])
        for name, held_out in (("validation", True), ("train", False)):
            keep = [i for i in range(len(train)) if (i in held) == held_out]
            splits[name] = replace(
                train,
                name=name,
                records=[train.records[i] for i in keep],
                rows=[train.rows[i] for i in keep],
            )
    return TaskData(labels=None, splits=splits, validation_from_train=from_train)


def featurize(split: ChatSplit, tokenizer, max_length: int | None) -> Features:
    """Rendered (ids, labels) per row; with a max_length, fitted (data.too_long) and packed into
    sequences (or one row per sequence with data.packing false)."""
    encoded = [
        encode_row(r, split.fmt, tokenizer, file=split.file, row_number=row)
        for r, row in zip(split.records, split.rows)
    ]
    if max_length is None:  # lengths only (to choose max_length)
        return Features({"input_ids": [ids for ids, _ in encoded]})
    return _sequences(encoded, split, max_length)


def _sequences(encoded: list[tuple], split: ChatSplit, max_length: int) -> PackedFeatures:
    kept, counts = truncate_all(encoded, max_length, split.too_long)
    if counts.get("too_long"):
        print(
            f"{split.file}: {counts['too_long']} of {len(encoded)} rows are longer than max_length "
            f"{max_length}: {counts.get('truncated', 0)} truncated, {counts.get('dropped', 0)} "
            f"dropped (data.too_long: {split.too_long}; a truncated row with no answer token "
            "left is dropped)"
        )
    if not kept:
        raise DataError(split.file, f"no row fits max_length {max_length}; raise data.max_length")
    packed = pack(kept, max_length) if split.packing else one_per_row(kept)
    columns = {"input_ids": [p["input_ids"] for p in packed]}
    labels = np.empty(len(packed), dtype=object)
    labels[:] = [p["labels"] for p in packed]
    return PackedFeatures(columns=columns, labels=labels, packed=packed)


def few_shot_featurize(
    split: ChatSplit, train: ChatSplit, tokenizer, max_length: int, shots: int, seed: int = 0
) -> PackedFeatures | None:
    """The split's conversations, each preceded by the same `shots` short training examples as
    earlier user/assistant turns; only the split's own answers are scored (base_few_shot).
    Demonstrations are dropped, oldest first, from a row that would not fit max_length.
    None for raw text, which has no turns to put examples in."""
    if shots <= 0 or "text" in (split.fmt, train.fmt):
        return None
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    demos: list[dict] = []
    for i in order:
        msgs = to_messages(train.records[i], train.fmt, file=train.file, row_number=train.rows[i])
        if [m["role"] for m in msgs] == ["user", "assistant"] and sum(
            len(m["content"]) for m in msgs
        ) <= 600:
            demos += msgs
        if len(demos) >= 2 * shots:
            break
    encoded = []
    for r, row in zip(split.records, split.rows):
        msgs = to_messages(r, split.fmt, file=split.file, row_number=row)
        head = msgs[:1] if msgs[0]["role"] == "system" else []
        for cut in range(0, len(demos) + 1, 2):
            convo = head + demos[cut:] + msgs[len(head) :]
            ids, labels = render(convo, tokenizer, first=len(head) + len(demos) - cut)
            if len(ids) <= max_length:
                break
        encoded.append((ids, labels))
    return _sequences(encoded, split, max_length)


def collate(features: PackedFeatures, index, pad_id: int) -> dict:
    """Packed sequences padded to the batch's longest, with per-example position ids and a
    (B, 1, T, T) block-diagonal causal mask; rows of one example each (data.packing: false)
    get a plain (B, T) padding mask."""
    batch = [features.packed[i] for i in index]
    one_each = all(len(b["seq_lens"]) == 1 for b in batch)
    return collate_packed(batch, pad_id, attention="2d" if one_each else "4d")


def load_model(source, data: TaskData, cfg: RunConfig, tokenizer):
    from transformers import AutoModelForCausalLM

    from tunelab.models.loading import load_with_head

    model = load_with_head(
        source, AutoModelForCausalLM, dropout=cfg.train.dropout, tokenizer=tokenizer
    )
    model.config.use_cache = False  # training: no KV cache
    return model


def loss(logits, labels, weights=None):
    """Next-token cross-entropy on trained tokens: logits (B, T, V) at t predict labels at t+1."""
    import torch.nn.functional as F

    logits = logits[:, -labels.shape[1] :]  # prompt tuning prepends virtual positions
    shift_logits = logits[:, :-1].float()  # (B, T-1, V)
    shift_labels = labels[:, 1:]  # (B, T-1)
    return F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1), ignore_index=-100
    )


def class_weights(y, labels, mode):
    return None


def generation_prompts(split: ChatSplit, n: int | None) -> tuple[list[list[dict]], list[str]]:
    """Up to n (None: all) conversations of the split cut before their last answer, and those answers
    (to generate and compare); nothing for raw text."""
    if split.fmt == "text":
        return [], []
    prompts, references = [], []
    for r, row in list(zip(split.records, split.rows))[:n]:
        msgs = to_messages(r, split.fmt, file=split.file, row_number=row)
        last = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
        prompts.append(msgs[:last])
        references.append(msgs[last]["content"])
    return prompts, references


TASK = Task(
    name=NAME,
    head_kind="causal",
    auto_model="AutoModelForCausalLM",
    peft_task_type="CAUSAL_LM",
    default_metric=DEFAULT_METRIC,
    default_metric_why=DEFAULT_METRIC_WHY,
    generates=True,
    score_base_model=SCORE_BASE_MODEL,
    pipeline_tag="text-generation",
    card_use="completing prompts and chatting in the style of its training data",
    serve_kind="generate",
    architectures=("ForCausalLM", "LMHeadModel"),
    load_data=load_data,
    featurize=featurize,
    load_model=load_model,
    loss=loss,
    read_split=read_split,
    collate=collate,
    class_weights=class_weights,
    few_shot_featurize=few_shot_featurize,
    generation_prompts=generation_prompts,
)
