"""Prefix tuning and prompt tuning through peft: the base stays frozen and a few learned
"virtual tokens" steer it. `prefix` learns key/value vectors prepended in every layer (Li &
Liang 2021); `prompt` learns input embeddings prepended to the sequence (Lester et al. 2021),
optionally initialised from a text (`prompt_init`). Neither folds into the base: model/ is
the peft adapter (plus the task head), loaded on top of the base model.
"""

from __future__ import annotations

from tunelab.config.schema import MethodConfig
from tunelab.errors import ConfigError
from tunelab.methods.peft_common import (  # noqa: F401
    save,
    save_adapter,
    task_type,
    warm_started,
    wrap,
)
from tunelab.tasks import get_task

# peft's prefix forward for these heads looks for `past_key_values` in the model's forward
# signature and raises where it is missing (transformers 5.24 renamed it to `cache` in BERT,
# Llama, BART, ... for these heads); its causal-LM and seq2seq paths pass it by keyword,
# which the renamed models still accept.
_PREFIX_NEEDS_SIGNATURE = ("sequence", "token")  # head kinds (tasks/base.py)


def refusal(cfg: MethodConfig, task: str, model_config=None) -> str | None:
    """Why prefix/prompt tuning cannot adapt this model for `task` (None: it can)."""
    if task_type(task) is None:
        return f"{cfg.name} tuning has no {task} form in peft"
    head_kind = get_task(task).head_kind
    if cfg.name == "prompt" and head_kind == "token":
        return (
            "prompt tuning prepends virtual tokens to the outputs, which then no longer line up "
            "with the words"
        )
    if model_config is None:
        return None
    if warm_started(task, model_config):
        return (
            f"peft cannot size {cfg.name} tuning's virtual tokens for an encoder-decoder "
            "warm-started from an encoder (BERT2BERT)"
        )
    if cfg.name == "prefix" and head_kind in _PREFIX_NEEDS_SIGNATURE:
        head = _cannot_take_prefix(task, model_config)
        if head is not None:
            return (
                f"prefix tuning needs the past_key_values argument that {head}'s forward "
                f"does not take in transformers {_version('transformers')} (peft "
                f"{_version('peft')} passes the prefix through it)"
            )
    return None


def _cannot_take_prefix(task: str, config) -> str | None:
    """None when peft can hand the prefix to the model (its own check, without weights);
    else the name of the model class that cannot take it."""
    import inspect

    from transformers import AutoModel

    from tunelab.methods.loading import auto_class

    names = []
    for auto in (auto_class(task), AutoModel):  # peft falls back to the backbone's forward
        cls = auto._model_mapping.get(type(config), None)
        if cls is None:
            continue
        if "past_key_values" in inspect.signature(cls.forward).parameters:
            return None
        names.append(cls.__name__)
    return names[0] if names else type(config).__name__


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def apply(model, cfg: MethodConfig, task: str, head: list[str] | None = None):
    from peft import PrefixTuningConfig, PromptTuningConfig, PromptTuningInit

    why = refusal(cfg, task, model.config)
    if why is not None:  # runs/train.py refused before loading; other callers land here
        raise ConfigError("method.name", why, cfg.name, has_value=True)
    common = {"task_type": task_type(task), "num_virtual_tokens": cfg.num_virtual_tokens}
    if cfg.name == "prefix":
        return wrap(model, PrefixTuningConfig(**common), key="method.name")
    init = {}
    if cfg.prompt_init:
        init = {
            "prompt_tuning_init": PromptTuningInit.TEXT,
            "prompt_tuning_init_text": cfg.prompt_init,
            "tokenizer_name_or_path": model.name_or_path,
        }
    return wrap(model, PromptTuningConfig(**common, **init), key="method.name")
