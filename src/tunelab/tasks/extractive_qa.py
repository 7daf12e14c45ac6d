"""Extractive question answering (SQuAD-style): the answer is a span of the context.

The model (AutoModelForQuestionAnswering) gives every token of a window a start and an end
logit. Reading and validation live in `extractive_qa_data`, windows in
`extractive_qa_windows`; this module holds the head, the loss, and the way back from
per-window logits to one answer per question (`best_spans`): the best span over all the
question's windows, in character offsets of the original context.

The task is reached with `tasks.get_task("extractive-qa")` and brings everything the layers
above need through its `TASK` hooks: scoring (EM/F1 over every window of every question),
the no-training baselines, prediction from raw question/context pairs (`tunelab predict`,
`tunelab serve`'s /v1/answer) and the per-row outputs of `tunelab eval`. The standard
procedure passes the model output whole to `loss` (QA outputs have no `.logits`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tunelab.tasks.base import Task
from tunelab.tasks.extractive_qa_data import (  # noqa: F401  (the task's public face)
    QAData,
    QAExample,
    QASplit,
    columns_of,
    load_data,
    read_examples,
)
from tunelab.tasks.extractive_qa_windows import QAFeatures, featurize  # noqa: F401

NAME = "extractive-qa"
DEFAULT_METRIC = "f1"
DEFAULT_METRIC_WHY = "SQuAD token F1 gives partial credit for overlapping spans; EM is all or none"
COMPARE_COLUMNS = ("f1", "exact_match")
MAX_ANSWER_TOKENS = 30  # longest answer considered, in tokens (HF's max_answer_length)
N_BEST = 20  # start and end candidates per window


def load_model(source, data: QAData | None, cfg, tokenizer):
    """A pretrained encoder with a fresh span head (2 outputs per token: start, end)."""
    from transformers import AutoModelForQuestionAnswering

    from tunelab.models.loading import load_with_head

    return load_with_head(
        source,
        AutoModelForQuestionAnswering,
        dropout=getattr(getattr(cfg, "train", None), "dropout", None),
        tokenizer=tokenizer,
    )


def class_weights(y, labels, mode: str) -> None:
    """No class weights: positions are not classes."""
    return None


def model_logits(outputs):
    """(B, T, 2) start/end logits of a QA model's output (what `loss` and `predict` take)."""
    import torch

    return torch.stack([outputs.start_logits, outputs.end_logits], dim=-1)


def split_logits(logits) -> tuple[Any, Any]:
    """(start, end), each (B, T), from a (start, end) pair, a (B, T, 2) array/tensor, or a
    model output with start_logits/end_logits."""
    if hasattr(logits, "start_logits"):
        return logits.start_logits, logits.end_logits
    if isinstance(logits, (tuple, list)):
        start, end = logits
        return start, end
    if logits.shape[-1] != 2:
        raise ValueError(f"expected (B, T, 2) start/end logits, got shape {tuple(logits.shape)}")
    return logits[..., 0], logits[..., 1]


def loss(logits, labels, weights=None):
    """Mean of the start and end cross-entropies, exactly what HF QA models compute when
    given start/end positions: `labels` (B, 2) token positions, clamped to T and positions
    == T ignored. `weights` is unused (positions have no class weights)."""
    import torch.nn.functional as F

    start, end = split_logits(logits)
    start, end = start.float(), end.float()  # (B, T); loss in fp32 under autocast
    ignored = start.shape[1]
    s = labels[:, 0].clamp(0, ignored)
    e = labels[:, 1].clamp(0, ignored)
    return (
        F.cross_entropy(start, s, ignore_index=ignored)
        + F.cross_entropy(end, e, ignore_index=ignored)
    ) / 2


def _window_candidates(
    start: np.ndarray, end: np.ndarray, offsets, n_best: int, max_tokens: int
) -> list[tuple[float, int, int]]:
    """(score, char start, char end) of the valid spans among the top-n starts x top-n ends
    of one window: both context tokens, end >= start, at most `max_tokens` tokens. When
    the top n yield none, every span of the window is tried."""
    ctx = np.array([o is not None for o in offsets])  # (T,)
    if not ctx.any():
        return []
    start = np.where(ctx, start[: len(offsets)], -np.inf)  # (T,)
    end = np.where(ctx, end[: len(offsets)], -np.inf)
    n_ctx = int(ctx.sum())
    for n in (min(n_best, n_ctx), n_ctx):
        si = np.argsort(-start, kind="stable")[:n]
        ei = np.argsort(-end, kind="stable")[:n]
        i, j = np.meshgrid(si, ei, indexing="ij")  # (n, n) start x end positions
        ok = (j >= i) & (j - i < max_tokens) & ctx[i] & ctx[j]
        if ok.any():
            i, j = i[ok], j[ok]
            scores = start[i] + end[j]
            return [
                (float(sc), offsets[a][0], offsets[b][1])
                for sc, a, b in zip(scores, i.tolist(), j.tolist(), strict=True)
            ]
    return []


def best_spans(
    start_logits: Sequence[np.ndarray] | np.ndarray,
    end_logits: Sequence[np.ndarray] | np.ndarray,
    features: QAFeatures,
    examples: Sequence[QAExample],
    *,
    n_best: int = N_BEST,
    max_answer_tokens: int = MAX_ANSWER_TOKENS,
) -> list[dict]:
    """One answer per example: the best span over all of its windows.

    `start_logits[w]`, `end_logits[w]`: window w's logits, (T_w,) or padded (T,) (a padded
    (W, T) array is fine: positions past the window's length are ignored). Candidates are
    the top-`n_best` starts x top-`n_best` ends per window, end >= start, at most
    `max_answer_tokens` tokens, context tokens only; a span found in several overlapping
    windows counts once, with its best score. Returns, in example order,
    {"id", "answer", "start", "end", "score", "probability"}: character offsets
    (`context[start:end] == answer`), score = start logit + end logit, probability = the
    softmax of the scores over the example's candidates. An example with no candidate (an
    empty window set) gets answer "", score None, probability 0.0.
    """
    per_example: list[dict[tuple[int, int], float]] = [{} for _ in examples]
    for w, ex in enumerate(features.example_index.tolist()):
        found = per_example[ex]
        cands = _window_candidates(
            np.asarray(start_logits[w], dtype=np.float64),
            np.asarray(end_logits[w], dtype=np.float64),
            features.offsets[w],
            n_best,
            max_answer_tokens,
        )
        for score, a, b in cands:
            if score > found.get((a, b), -np.inf):
                found[(a, b)] = score
    out = []
    for e, found in zip(examples, per_example, strict=True):
        if not found:
            out.append(
                {"id": e.id, "answer": "", "start": 0, "end": 0, "score": None, "probability": 0.0}
            )
            continue
        spans = list(found)
        scores = np.array([found[s] for s in spans])
        probs = np.exp(scores - scores.max())
        probs /= probs.sum()
        k = int(scores.argmax())
        a, b = spans[k]
        out.append(
            {
                "id": e.id,
                "answer": e.context[a:b],
                "start": a,
                "end": b,
                "score": float(scores[k]),
                "probability": float(probs[k]),
            }
        )
    return out


def predict(
    logits,
    features: QAFeatures,
    examples: Sequence[QAExample],
    *,
    n_best: int = N_BEST,
    max_answer_tokens: int = MAX_ANSWER_TOKENS,
) -> list[dict]:
    """Answers from per-window logits: a (W, T, 2) array (padded), a tuple (start, end) of
    (W, T) arrays, or a list of per-window (T_w, 2) arrays. See `best_spans`."""
    if isinstance(logits, tuple):
        start, end = logits
    elif isinstance(logits, list):
        start = [np.asarray(x)[:, 0] for x in logits]
        end = [np.asarray(x)[:, 1] for x in logits]
    else:
        arr = np.asarray(logits)  # (W, T, 2)
        start, end = arr[..., 0], arr[..., 1]
    return best_spans(
        start, end, features, examples, n_best=n_best, max_answer_tokens=max_answer_tokens
    )


def score(answers: Sequence[dict | str | None], examples: Sequence[QAExample]) -> dict:
    """SQuAD v1.1 EM and F1 (0..1) of answers (dicts from `predict`, or texts) against the
    examples' gold answers; {"exact_match", "f1", "n"}."""
    from tunelab.metrics.squad import squad_metrics

    texts = [a["answer"] if isinstance(a, dict) else a for a in answers]
    return squad_metrics(texts, [e.answers for e in examples])


# the task's hooks -------------------------------------------------------------------------

MAX_LENGTH = 384  # the usual SQuAD window (HF's run_qa default): longer contexts are windowed


def choose_max_length(lengths: np.ndarray, model_max: int) -> tuple[int, str]:
    """Windows of min(384, the model's limit) tokens: long contexts become overlapping
    windows instead of being cut, so the training lengths do not decide."""
    value = min(MAX_LENGTH, model_max)
    longer = float((lengths > value).mean()) if len(lengths) else 0.0
    return value, (
        f"SQuAD's usual window of {MAX_LENGTH} tokens (the model takes {model_max}); "
        f"{longer:.1%} of training questions span several overlapping windows"
    )


def featurize_split(split, tokenizer, max_length: int | None) -> QAFeatures:
    """`featurize` with the split's `data.doc_stride` (the hook's (split, tokenizer,
    max_length) signature)."""
    return featurize(split, tokenizer, max_length, doc_stride=getattr(split, "doc_stride", None))


def head_modules(model) -> list[str]:
    """The fresh span head trains fully under LoRA and friends (and gets no LoRA update)."""
    return ["qa_outputs"] if any(n == "qa_outputs" for n, _ in model.named_children()) else []


def span_logits(model, features: QAFeatures, batch_size: int, pad_id: int):
    """(starts, ends, loss): per-window (T_w,) start and end logits in window order, and the
    mean loss over the windows (windows without their answer point at CLS, as in training)."""
    import torch

    from tunelab.data.batching import collate, sorted_batches

    device = next(model.parameters()).device
    starts: list[np.ndarray] = [np.zeros(0)] * len(features)
    ends: list[np.ndarray] = [np.zeros(0)] * len(features)
    total, windows = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for index in sorted_batches(features.lengths, batch_size):
            batch = collate(features, index, pad_id)
            labels = batch.pop("labels", None)
            out = model(**{k: v.to(device) for k, v in batch.items()})
            if labels is not None:
                total += float(loss(out, labels.to(device))) * len(index)
                windows += len(index)
            start, end = split_logits(out)
            start, end = start.float().cpu().numpy(), end.float().cpu().numpy()  # (B, T)
            for j, w in enumerate(index.tolist()):
                n = len(features.columns["input_ids"][w])
                starts[w], ends[w] = start[j, :n], end[j, :n]
    model.train(was_training)
    return starts, ends, (total / windows if windows else float("nan"))


def score_model(model, features: QAFeatures, split, labels, batch_size: int, pad_id: int) -> dict:
    """Validation/test scores: the best span per question over all of its windows, SQuAD
    v1.1 EM and F1 (0..1) against every gold answer, and the mean window loss."""
    starts, ends, mean_loss = span_logits(model, features, batch_size, pad_id)
    answers = best_spans(starts, ends, features, split.examples)
    s = score(answers, split.examples)
    return {"exact_match": s["exact_match"], "f1": s["f1"], "loss": mean_loss}


def baselines(data: QAData, cfg) -> dict:
    """{name: {split: {"exact_match", "f1", "n"}}} of the no-training baselines on the
    validation and test splits (tasks/extractive_qa_baseline.py)."""
    from tunelab.tasks.extractive_qa_baseline import BASELINES, baseline_scores

    out: dict[str, dict] = {name: {} for name in BASELINES}
    for split in ("validation", "test"):
        if split in data.splits:
            for name, metrics in baseline_scores(data.splits[split].examples).items():
                out[name][split] = metrics
    return out


def _examples(questions: Sequence[str], contexts: Sequence[str] | None) -> list[QAExample]:
    from tunelab.errors import TunelabError

    if contexts is None or len(contexts) != len(questions):
        n = 0 if contexts is None else len(contexts)
        raise TunelabError(f"{len(questions)} questions but {n} contexts; give one context each")
    out = []
    for i, (q, c) in enumerate(zip(questions, contexts, strict=True)):
        if not isinstance(q, str) or not q.strip() or not isinstance(c, str) or not c.strip():
            raise TunelabError(f"question {i + 1}: needs a question and a context (non-empty)")
        out.append(QAExample(str(i), q, c, [], [], i + 1))
    return out


def predict_texts(trained, questions, contexts, batch_size: int = 64) -> list[dict]:
    """`tunelab predict` / serving: one answer per (question, context) of a trained model,
    {"answer", "start", "end", "score", "probability"} with `context[start:end] == answer`."""
    examples = _examples(list(questions), None if contexts is None else list(contexts))
    f = featurize(
        examples, trained.tokenizer, trained.max_length, doc_stride=trained.meta.get("doc_stride")
    )
    starts, ends, _ = span_logits(trained.model, f, batch_size, trained.tokenizer.pad_token_id)
    answers = best_spans(starts, ends, f, examples)
    return [{k: a[k] for k in ("answer", "start", "end", "score", "probability")} for a in answers]


def model_meta(cfg, meta) -> dict:
    """What tunelab.json adds for this task: the question/context/answers columns and the
    window stride, so `tunelab eval` and `tunelab predict` read and window rows as training
    did."""
    columns = {**(meta.get("columns") or {}), **columns_of(cfg.data)}
    return {"columns": columns, "doc_stride": getattr(cfg.data, "doc_stride", None)}


def eval_rows(trained, path, name: str, *, batch_size: int = 64, **columns):
    """`tunelab eval`: per-question EM and F1 of a trained model on a SQuAD file, so the report
    recomputes them on any subset of rows (bootstrap, slices, paired tests). Returns an object
    shaped like evaluation.report.rows.RowOutputs (tasks/ does not import evaluation/)."""
    from types import SimpleNamespace

    from tunelab.metrics.squad import best_over_golds, exact_match_score, f1_score

    saved = trained.meta.get("columns") or {}
    cols = {k: saved.get(k) or v for k, v in columns_of(None).items()}
    examples = read_examples(path, cols)
    f = featurize(
        examples, trained.tokenizer, trained.max_length, doc_stride=trained.meta.get("doc_stride")
    )
    starts, ends, mean_loss = span_logits(
        trained.model, f, batch_size, trained.tokenizer.pad_token_id
    )
    answers = best_spans(starts, ends, f, examples)
    em = np.array([best_over_golds(exact_match_score, a["answer"], e.answers)
                   for a, e in zip(answers, examples, strict=True)])  # fmt: skip
    f1 = np.array([best_over_golds(f1_score, a["answer"], e.answers)
                   for a, e in zip(answers, examples, strict=True)])  # fmt: skip

    def metric_fn(idx: np.ndarray) -> dict[str, float]:
        idx = np.asarray(idx, dtype=np.int64)
        if not len(idx):
            return {"f1": 0.0, "exact_match": 0.0}
        return {"f1": float(f1[idx].mean()), "exact_match": float(em[idx].mean())}

    metrics = {**metric_fn(np.arange(len(examples))), "loss": mean_loss, "n": len(examples)}
    wrong = [k for k in np.argsort(f1, kind="stable").tolist() if f1[k] < 1.0][:20]
    mistakes = [
        {"row": examples[k].row, "question": examples[k].question, "answer": answers[k]["answer"],
         "gold": examples[k].answers[0], "f1": round(float(f1[k]), 4)}
        for k in wrong
    ]  # fmt: skip
    return SimpleNamespace(
        name=name,
        task=trained.task,
        n=len(examples),
        metric_fn=metric_fn,
        metrics=metrics,
        correct=em == 1.0,
        details={"mistakes": mistakes},
    )


TASK = Task(
    name=NAME,
    head_kind="span",
    auto_model="AutoModelForQuestionAnswering",
    # not "QUESTION_ANS": peft 0.21's PeftModelForQuestionAnswering drops token_type_ids
    # in forward, so a BERT adapter trains on segment 0 everywhere and its merged model
    # (which gets them) answers differently; the plain PeftModel passes every input, and
    # `head_modules` keeps the span head fully trained
    peft_task_type=None,
    default_metric=DEFAULT_METRIC,
    default_metric_why=DEFAULT_METRIC_WHY,
    labelled=False,
    pipeline_tag="question-answering",
    card_use="answering questions with a span of a given context (SQuAD-style extractive QA)",
    serve_kind="answer",
    architectures=("ForQuestionAnswering",),
    compare_columns=COMPARE_COLUMNS,
    load_data=load_data,
    featurize=featurize_split,
    choose_max_length=choose_max_length,
    load_model=load_model,
    loss=loss,
    class_weights=class_weights,
    head_modules=head_modules,
    predict=predict,
    score=score_model,
    baselines=baselines,
    predict_texts=predict_texts,
    model_meta=model_meta,
    eval_rows=eval_rows,
)
