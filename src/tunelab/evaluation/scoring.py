"""Which scoring function scores which task: `score(model, features, labels, batch_size, pad_id)`.

The tasks decide the metrics; the implementations live here in evaluation/ (the training loop
gets the chosen one as a callback from run.py).
"""

from __future__ import annotations

from collections.abc import Callable


def scorer(task: str) -> Callable:
    if task == "classification":
        from tunelab.evaluation.evaluate import score_features

        return score_features
    if task == "token-classification":
        from tunelab.evaluation.ner import score_token_features

        return score_token_features
    if task == "mlm":
        from tunelab.evaluation.mlm import score_mlm_features

        def score(model, features, labels, batch_size, pad_id):
            return score_mlm_features(model, features, batch_size, pad_id)

        return score
    raise ValueError(f"no scorer for task {task!r}")
