"""The one interface of a task: `Task`, what every layer above `tasks/` asks a task.

A task module (classification.py, token_classification.py, ...) ends with
`TASK = Task(name=..., ...)`; `tunelab.tasks.get_task(name)` returns it. Code outside
`tasks/` never compares task names: it reads what the task declares (its head kind, whether
it has labels, which transformers class holds its head, how it is served) or calls its hooks
(read, featurize, load, loss, predict). So a new task is its module, its test, one line in
the registry (`tasks/__init__.py`) and one row in the docs.

`head_kind` says what the model outputs, the property most code above really depends on:
- "sequence": (B, C) logits per input (classification and anything shaped like it);
- "token": (B, T, C) logits per input token, labels on the first sub-token of each word;
- "causal": (B, T, V) next-token logits of a decoder-only LM;
- "masked": (B, T, V) logits at masked positions of an encoder;
- "encoder-decoder": an encoder-decoder generating a target text;
- "span": start and end logits over the input tokens (extractive QA).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from tunelab.data.batching import collate as pad_collate
from tunelab.data.labels import LabelSpace
from tunelab.models import lengths as model_lengths

HeadKind = Literal["sequence", "token", "causal", "masked", "encoder-decoder", "span"]


def no_class_weights(y: Any, labels: LabelSpace | None, mode: str) -> None:
    """Tasks without a label space weigh every example the same."""
    return None


def no_head(model) -> list[str] | None:
    """The modules a method must keep trainable besides its own (None: the method decides)."""
    return None


@dataclass(frozen=True, kw_only=True)
class Task:
    """What one task is and does. Hooks are plain functions of the task's module."""

    name: str
    head_kind: HeadKind
    # transformers class that holds this task's head, e.g. "AutoModelForSequenceClassification"
    auto_model: str
    # peft's TaskType member for this head (None: peft infers it, or the task has no peft type)
    peft_task_type: str | None
    default_metric: str  # early stopping / search selects on it
    default_metric_why: str
    labelled: bool = False  # reads a label space from train; tunelab.json saves it
    generates: bool = False  # outputs text: `tunelab generate`, chat, completions
    score_base_model: bool = False  # results compare with the untouched model's scores
    # model card: the Hub pipeline tag and what the model is for, in a sentence
    pipeline_tag: str = ""
    card_use: str = ""
    # `tunelab serve`: the route family ("classify", "entities", "generate", "answer")
    serve_kind: str | None = None
    # suffixes of `architectures` in a plain HF config.json that mean this task's head
    architectures: tuple[str, ...] = ()
    compare_columns: tuple[str, ...] = ()  # the eval report's results-table columns

    # hooks: reading and features
    load_data: Callable[..., Any]  # (RunConfig) -> TaskData: every data error, no weights
    featurize: Callable[..., Any]  # (split, tokenizer, max_length) -> Features
    read_split: Callable[..., Any] | None = None  # (name, df, DataConfig, labels) -> split
    collate: Callable[..., dict] = pad_collate  # (features, index, pad_id) -> batch
    choose_max_length: Callable[[np.ndarray, int], tuple[int, str]] = (
        model_lengths.choose_max_length
    )
    few_shot_featurize: Callable[..., Any] | None = None
    generation_prompts: Callable[..., Any] | None = None
    # hooks: model and training
    load_model: Callable[..., Any]  # (source, data, cfg, tokenizer) -> model with the head
    loss: Callable[..., Any]  # (logits, labels, weights) -> scalar tensor
    class_weights: Callable[..., Any] = no_class_weights
    head_modules: Callable[[Any], list[str] | None] = no_head
    # hooks: outputs
    predict: Callable[..., Any] | None = None  # logits -> (ids, scores)
    # (model, features, split, labels, batch_size, pad_id) -> flat metrics dict; None: the
    # evaluation layer scores the task by its head kind (evaluation/scoring/)
    score: Callable[..., dict] | None = None
    # `tunelab eval`: (trained, path, name, **columns) -> evaluation.report.rows.RowOutputs;
    # None: the report reads the file by the task's head kind (evaluation/report/)
    eval_rows: Callable[..., Any] | None = None
    # (data, cfg) -> {baseline name: {split: metrics}}: baselines that need no training
    # (runs/train.py puts them in results.json's "baselines")
    baselines: Callable[..., dict] | None = None
    # `tunelab predict` / `tunelab serve`: (trained, texts, pairs, batch_size) -> one dict per
    # text (for a span head: text = question, pair = its context); None: by head kind
    predict_texts: Callable[..., list[dict]] | None = None
    # (RunConfig, meta) -> changes to the tunelab.json runs/train.py saves (e.g. the task's
    # own columns), so eval and predict read rows as training did; None: no changes
    model_meta: Callable[..., dict] | None = None

    def __str__(self) -> str:
        return self.name
