"""Extractive QA features: question + context cut into overlapping windows of tokens.

A context longer than `max_length` (with its question) becomes several windows that
overlap by `doc_stride` tokens (the fast tokenizer's `return_overflowing_tokens` + `stride`,
`truncation="only_second"`), so every answer up to `doc_stride` tokens long lies whole in
at least one window. Each window keeps
- the example it came from (`example_index`),
- per token, the (start, end) character offsets in the *original* context, or None for
  question and special tokens (`offsets`), so a predicted token span maps back to exact
  characters of the context, whatever the tokenizer lower-cases or normalises;
- its label: the positions of the first and last token of the first gold answer that lies
  wholly inside the window (dev sets list several; training sets one), or (cls, cls) (the
  CLS index, 0 for BERT) when none does, which is what HF's QA heads are trained on for
  windows without the answer. An answer longer than `doc_stride` tokens may fall across
  every window boundary and then has no window.

Questions longer than `max_question_length` tokens are cut (at a token boundary) before
windowing: the tokenizer refuses `only_second` truncation when the question alone leaves
no room for the context.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tunelab.data.batching import Features
from tunelab.errors import ConfigError, ModelSourceError

Offsets = list[tuple[int, int] | None]


@dataclass
class QAFeatures(Features):
    """Windows as tokenized rows; `labels` is (W, 2) int64 (start, end token positions).

    `example_index[w]`: the example window w came from; `offsets[w][t]`: character span of
    token t in that example's context, None outside the context; `cls_index[w]`: the
    position that stands for "no answer in this window"."""

    example_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    offsets: list[Offsets] = field(default_factory=list)
    cls_index: list[int] = field(default_factory=list)

    def windows_of(self, example: int) -> np.ndarray:
        """Window indices of one example, in context order."""
        return np.flatnonzero(self.example_index == example)


def default_question_length(max_length: int) -> int:
    """Question tokens kept: 64 at max_length 384 or more (HF's max_query_length), a
    quarter of max_length below that."""
    return max(1, min(64, max_length // 4))


def default_stride(max_length: int, question_length: int, n_special: int = 3) -> int:
    """Overlap of consecutive windows: 128 at max_length 384 (the usual SQuAD setting),
    scaled with max_length, and at most half of the room left for context tokens."""
    room = max_length - question_length - n_special
    if room < 2:
        raise ConfigError(
            "data.max_length",
            f"too small for question answering: {question_length} question tokens and "
            f"{n_special} special tokens leave {room} for the context",
            max_length,
            has_value=True,
        )
    return max(1, min(max_length // 3, room // 2))


def cut_questions(tokenizer, questions: list[str], max_tokens: int) -> list[str]:
    """Each question cut after its `max_tokens`-th token (at that token's character end)."""
    enc = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    out = []
    for q, offsets in zip(questions, enc["offset_mapping"], strict=True):
        out.append(q if len(offsets) <= max_tokens else q[: offsets[max_tokens - 1][1]])
    return out


def answer_positions(offsets: Offsets, start: int, end: int, cls: int) -> tuple[int, int]:
    """Token positions (first, last) of characters [start, end) in one window, or (cls, cls)
    when they are not wholly inside the window's context tokens."""
    ctx = [t for t, o in enumerate(offsets) if o is not None]
    if not ctx or offsets[ctx[0]][0] > start or offsets[ctx[-1]][1] < end:
        return cls, cls
    inside = [t for t in ctx if offsets[t][0] < end and offsets[t][1] > start]  # overlapping
    if not inside:
        return cls, cls
    return inside[0], inside[-1]


def _require_fast(tokenizer) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise ModelSourceError(
            f"{type(tokenizer).__name__} is a slow tokenizer; extractive QA needs a fast one "
            "(it maps tokens back to character offsets of the context)"
        )


def featurize(
    split,
    tokenizer,
    max_length: int | None,
    *,
    doc_stride: int | None = None,
    max_question_length: int | None = None,
) -> QAFeatures:
    """Windows of every example of `split` (a QASplit or a list of QAExample).

    `max_length=None`: one uncut sequence per example (to measure lengths). Otherwise
    windows of at most `max_length` tokens overlapping by `doc_stride` (default:
    `default_stride`). Tokenizers that pad on the left (XLNet-style) get the context first,
    as HF's QA examples do."""
    _require_fast(tokenizer)
    examples = getattr(split, "examples", split)
    question_first = getattr(tokenizer, "padding_side", "right") == "right"
    questions = [e.question.lstrip() for e in examples]  # leading spaces only waste tokens
    contexts = [e.context for e in examples]
    if max_length is None:
        first, second = (questions, contexts) if question_first else (contexts, questions)
        enc = tokenizer(first, second, return_offsets_mapping=True, truncation=False, verbose=False)
        sample = list(range(len(examples)))
    else:
        n_special = tokenizer.num_special_tokens_to_add(pair=True)
        q_len = max_question_length or default_question_length(max_length)
        stride = doc_stride or default_stride(max_length, q_len, n_special)
        if stride >= max_length - q_len - n_special:
            raise ConfigError(
                "data.doc_stride",
                f"must be below the {max_length - q_len - n_special} tokens left for the context",
                stride,
                has_value=True,
            )
        questions = cut_questions(tokenizer, questions, q_len)
        first, second = (questions, contexts) if question_first else (contexts, questions)
        enc = tokenizer(
            first,
            second,
            truncation="only_second" if question_first else "only_first",
            max_length=max_length,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=False,
        )
        sample = enc["overflow_to_sample_mapping"]
    context_id = 1 if question_first else 0
    cls_id = getattr(tokenizer, "cls_token_id", None)
    offsets_all, cls_all, labels = [], [], np.zeros((len(sample), 2), dtype=np.int64)
    for w, ex in enumerate(sample):
        seq = enc.sequence_ids(w)
        offsets = [
            tuple(o) if s == context_id else None
            for o, s in zip(enc["offset_mapping"][w], seq, strict=True)
        ]
        ids = enc["input_ids"][w]
        cls = ids.index(cls_id) if cls_id is not None and cls_id in ids else 0
        e = examples[ex]
        labels[w] = (cls, cls)  # also for questions to answer, not to train on
        for a, b in zip(e.answer_starts, e.answer_ends, strict=True):
            labels[w] = answer_positions(offsets, a, b, cls)
            if labels[w, 0] != cls:
                break
        offsets_all.append(offsets)
        cls_all.append(cls)
    columns = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
    return QAFeatures(
        columns=columns,
        labels=labels,
        example_index=np.asarray(sample, dtype=np.int64),
        offsets=offsets_all,
        cls_index=cls_all,
    )
