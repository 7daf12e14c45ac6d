"""Tasks: one file per training objective, each exposing the same small interface.

A task module provides
- `load_data(cfg: RunConfig) -> TaskData`: read and validate the splits (no weights);
- `featurize(split, tokenizer, max_length) -> Features`: token ids per row;
- `load_model(source, data, cfg, tokenizer)`: the pretrained model with this task's head;
- `loss(logits, labels, class_weights) -> Tensor`: the loss of a batch;
- `predict(logits) -> (ids, scores)`: outputs as labels.
`tasks/` never imports `methods/`.
"""

from __future__ import annotations

from types import ModuleType


def get_task(name: str) -> ModuleType:
    import importlib

    module = {
        "classification": "classification",
        "token-classification": "token_classification",
        "mlm": "mlm",
        "causal-lm": "causal_lm",
        "seq2seq": "seq2seq",
    }.get(name)
    if module is None:
        from tunelab.errors import ConfigError

        raise ConfigError("task", "unknown task", name, has_value=True)
    return importlib.import_module(f"tunelab.tasks.{module}")
