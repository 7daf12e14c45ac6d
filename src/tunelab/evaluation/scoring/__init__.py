"""Which scoring function scores which task:
`score(model, features, labels, batch_size, pad_id, split=None)` -> flat dict of metrics.
`split` (the task's split object) lets token classification count words cut by max_length.

A task that brings its own `score` hook (tasks/base.py) is scored by it; the others by the
scorer of their head kind, implemented here in evaluation/ (the training loop gets the chosen
one as a callback from runs/train.py).
"""

from __future__ import annotations

from collections.abc import Callable

from tunelab.tasks import get_task


def scorer(task_name: str) -> Callable:
    task = get_task(task_name)
    if task.score is not None:

        def own(model, features, labels, batch_size, pad_id, split=None):
            return task.score(model, features, split, labels, batch_size, pad_id)

        return own
    kind = task.head_kind
    if kind == "sequence":
        from tunelab.evaluation.scoring.classification import score_features

        def score(model, features, labels, batch_size, pad_id, split=None):
            return score_features(model, features, labels, batch_size, pad_id)

        return score
    if kind == "token":
        from tunelab.evaluation.scoring.entities import score_token_features

        return score_token_features
    if kind == "masked":
        from tunelab.evaluation.scoring.mlm import score_mlm_features

        def score(model, features, labels, batch_size, pad_id, split=None):
            return score_mlm_features(model, features, batch_size, pad_id)

        return score
    if kind == "causal":
        from tunelab.evaluation.scoring.causal_lm import score_lm_features

        def score(model, features, labels, batch_size, pad_id, split=None):
            return score_lm_features(model, features, batch_size, pad_id)

        return score
    if kind == "encoder-decoder":
        from tunelab.evaluation.scoring.seq2seq import score_seq2seq_features

        def score(model, features, labels, batch_size, pad_id, split=None):
            return score_seq2seq_features(model, features, batch_size, pad_id)

        return score
    raise ValueError(f"no scorer for task {task.name!r} (head kind {kind!r})")
