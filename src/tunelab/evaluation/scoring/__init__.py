"""Which scoring function scores which task:
`score(model, features, labels, batch_size, pad_id, split=None)` -> flat dict of metrics.
`split` (the task's split object) lets token classification count words cut by max_length.

The tasks decide the metrics; the implementations live here in evaluation/ (the training loop
gets the chosen one as a callback from runs/train.py).
"""

from __future__ import annotations

from collections.abc import Callable


def scorer(task: str) -> Callable:
    if task == "classification":
        from tunelab.evaluation.scoring.classification import score_features

        def score(model, features, labels, batch_size, pad_id, split=None):
            return score_features(model, features, labels, batch_size, pad_id)

        return score
    if task == "token-classification":
        from tunelab.evaluation.scoring.entities import score_token_features

        return score_token_features
    if task == "mlm":
        from tunelab.evaluation.scoring.mlm import score_mlm_features

        def score(model, features, labels, batch_size, pad_id, split=None):
            return score_mlm_features(model, features, batch_size, pad_id)

        return score
    if task == "causal-lm":
        from tunelab.evaluation.scoring.causal_lm import score_lm_features

        def score(model, features, labels, batch_size, pad_id, split=None):
            return score_lm_features(model, features, batch_size, pad_id)

        return score
    if task == "seq2seq":
        from tunelab.evaluation.scoring.seq2seq import score_seq2seq_features

        def score(model, features, labels, batch_size, pad_id, split=None):
            return score_seq2seq_features(model, features, batch_size, pad_id)

        return score
    raise ValueError(f"no scorer for task {task!r}")
