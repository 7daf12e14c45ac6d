"""Prefix tuning and prompt tuning through peft: the base stays frozen and a few learned
"virtual tokens" steer it. `prefix` learns key/value vectors prepended in every layer (Li &
Liang 2021); `prompt` learns input embeddings prepended to the sequence (Lester et al. 2021),
optionally initialised from a text (`prompt_init`). Neither folds into the base: model/ is
the peft adapter (plus the task head), loaded on top of the base model.
"""

from __future__ import annotations

from tunelab.config.schema import MethodConfig
from tunelab.errors import ConfigError
from tunelab.methods.peft_common import save, save_adapter, task_type, wrap  # noqa: F401


def apply(model, cfg: MethodConfig, task: str = "classification", head: list[str] | None = None):
    from peft import PrefixTuningConfig, PromptTuningConfig, PromptTuningInit

    kind = task_type(task)
    if kind is None:
        raise ConfigError(
            "method.name",
            f"{cfg.name} tuning has no {task} form in peft; use lora, ia3 or adapter",
            cfg.name,
            has_value=True,
        )
    if cfg.name == "prompt" and task == "token-classification":
        raise ConfigError(
            "method.name",
            "prompt tuning prepends virtual tokens to the outputs, which then no longer line up "
            "with the words; use prefix (same idea, keys/values only) for token-classification",
            cfg.name,
            has_value=True,
        )
    common = {"task_type": kind, "num_virtual_tokens": cfg.num_virtual_tokens}
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
