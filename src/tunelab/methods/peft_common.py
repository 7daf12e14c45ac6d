"""What the peft-backed methods (lora, dora, qlora, ia3, prefix, prompt) share: the task's
peft task type, wrapping with a config error on failure, and saving merged or alone."""

from __future__ import annotations

import warnings
from pathlib import Path

from tunelab.config.schema import MethodConfig
from tunelab.errors import ConfigError
from tunelab.tasks import get_task


def task_type(task: str):
    """peft's task type for a tunelab task (which head trains fully, how forward is called);
    None for masked-LM (peft has no such type: the model is wrapped as is)."""
    from peft import TaskType

    name = get_task(task).peft_task_type
    return TaskType[name] if name is not None else None


def warm_started(task: str, config) -> bool:
    """A seq2seq run on this config builds an EncoderDecoderModel warm-started from an
    encoder (BERT2BERT): the encoder's own config, or the built model's."""
    if get_task(task).head_kind != "encoder-decoder" or config is None:
        return False
    own = bool(getattr(config, "is_encoder_decoder", False))
    return not own or config.model_type == "encoder-decoder"


def wrap(model, peft_config, key: str = "method.target_modules"):
    """get_peft_model, with peft's ValueError (e.g. no module matched) as a ConfigError."""
    from peft import get_peft_model

    try:
        with warnings.catch_warnings():  # peft calls a transformers API deprecated for v6
            warnings.simplefilter("ignore", FutureWarning)
            return get_peft_model(model, peft_config)
    except ValueError as exc:
        raise ConfigError(key, str(exc).splitlines()[0]) from None


def save(model, out_dir: Path, cfg: MethodConfig) -> None:
    """The update folded into the base (`cfg.merges`), or the update alone (peft format)."""
    if cfg.merges:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model = model.merge_and_unload(safe_merge=True)
    model.save_pretrained(out_dir, safe_serialization=True)


def save_adapter(model, out_dir: Path) -> None:
    """The update alone: adapter_config.json + adapter_model.safetensors (loads with peft)."""
    model.save_pretrained(out_dir, safe_serialization=True)
