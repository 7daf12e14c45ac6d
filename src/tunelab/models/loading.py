"""Load tokenizers and task models from a resolved ModelSource.

Only safetensors weights are loaded and `trust_remote_code` stays off: a model folder can
not run code on the user's machine.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from tunelab.errors import ModelSourceError
from tunelab.models.quiet import quiet_transformers  # noqa: F401  (re-exported)
from tunelab.models.sources import ModelSource

# Config attributes that hold dropout probabilities, across architectures.
DROPOUT_KEYS = (
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "hidden_dropout",
    "attention_dropout",
    "dropout",
    "classifier_dropout",
    "resid_pdrop",
    "embd_pdrop",
    "attn_pdrop",
)


@contextlib.contextmanager
def hub_errors(source: ModelSource) -> Iterator[None]:
    try:
        yield
    except (OSError, ValueError) as exc:
        if source.kind == "hub":
            raise ModelSourceError(
                f"could not load '{source.spec}' from the Hugging Face Hub: {str(exc).splitlines()[0]}"
            ) from None
        raise ModelSourceError(
            f"could not load model '{source.spec}': {str(exc).splitlines()[0]}"
        ) from None


def load_kwargs(source: ModelSource) -> dict:
    """Safe defaults for every from_pretrained call; hub ids are checked for reachability first."""
    kwargs = {"trust_remote_code": False}
    if source.kind == "hub":
        from tunelab.models.hub import check_hub_model

        kwargs["local_files_only"] = check_hub_model(source.path)
    return kwargs


_LOAD_OPTIONS: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "load_options", default=None
)


@contextlib.contextmanager
def load_options(**options) -> Iterator[None]:
    """Extra `from_pretrained` arguments for the model loads inside the block (a method's
    needs, e.g. qlora's 4-bit quantization_config), without threading them through tasks."""
    token = _LOAD_OPTIONS.set({**(_LOAD_OPTIONS.get() or {}), **options})
    try:
        yield
    finally:
        _LOAD_OPTIONS.reset(token)


def load_config(source: ModelSource, **overrides):
    from transformers import AutoConfig

    with quiet_transformers(), hub_errors(source):
        return AutoConfig.from_pretrained(source.path, **load_kwargs(source), **overrides)


def load_tokenizer(source: ModelSource):
    """Load the tokenizer and make sure it can pad."""
    from transformers import AutoTokenizer

    with quiet_transformers(), hub_errors(source):
        tok = AutoTokenizer.from_pretrained(source.path, **load_kwargs(source))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    return tok


def dropout_overrides(config, dropout: float | None) -> dict:
    """Config kwargs that set every dropout probability this architecture has to `dropout`."""
    if dropout is None:
        return {}
    return {
        k: dropout
        for k in DROPOUT_KEYS
        if getattr(config, k, None) is not None or k == "classifier_dropout"
    }


def load_with_head(
    source: ModelSource,
    auto_class,
    *,
    label_names: list[str] | None = None,
    problem_type: str | None = None,
    dropout: float | None = None,
    tokenizer=None,
):
    """A pretrained model of `auto_class` (e.g. AutoModelForTokenClassification): a fresh head
    for `label_names` when given, dropout overridden, pad id agreed with the tokenizer;
    safetensors only, no remote code."""
    base_config = load_config(source)
    head: dict = {}
    if label_names is not None:
        head = {
            "num_labels": len(label_names),
            "id2label": dict(enumerate(label_names)),
            "label2id": {n: i for i, n in enumerate(label_names)},
        }
    if problem_type is not None:
        head["problem_type"] = problem_type
    config = load_config(source, **head, **dropout_overrides(base_config, dropout))
    if tokenizer is not None and getattr(config, "pad_token_id", None) is None:
        config.pad_token_id = tokenizer.pad_token_id
    with quiet_transformers(), hub_errors(source):
        return auto_class.from_pretrained(
            source.path,
            config=config,
            ignore_mismatched_sizes=True,
            use_safetensors=True,
            **load_kwargs(source),
            **(_LOAD_OPTIONS.get() or {}),
        )


def load_sequence_classifier(
    source: ModelSource,
    label_names: list[str],
    *,
    multi_label: bool = False,
    dropout: float | None = None,
    tokenizer=None,
):
    """A pretrained model with a fresh classification head for `label_names`."""
    from transformers import AutoModelForSequenceClassification

    return load_with_head(
        source,
        AutoModelForSequenceClassification,
        label_names=label_names,
        problem_type="multi_label_classification" if multi_label else "single_label_classification",
        dropout=dropout,
        tokenizer=tokenizer,
    )


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = trainable = 0
    for p in model.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return trainable, total
