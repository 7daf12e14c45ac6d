"""LoRA through peft: low-rank updates on the chosen linear layers; the task head trains fully.

Saving writes the adapter alone (`adapter_config.json` + `adapter_model.safetensors`, loads
with `peft`), and with `merge: true` (the default) also the adapter folded into the base, a
plain model folder that `transformers.pipeline` loads.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from tunelab.config.schema import MethodConfig

HEADS = ("classifier", "score", "lm_head")  # output heads: never LoRA targets


def linear_targets(model, head: list[str]) -> list[str]:
    """Full names of every nn.Linear outside the heads: peft's "all-linear" would also wrap a
    token-classification or masked-LM head, which then cannot train fully."""
    import torch

    def in_head(name: str) -> bool:
        return any(
            name == h or name.startswith(h + ".") or name.endswith("." + h) or f".{h}." in name
            for h in head
        )

    return [
        n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and not in_head(n)
    ]


def apply(model, cfg: MethodConfig, task: str = "classification", head: list[str] | None = None):
    """Wrap `model` with LoRA; the task picks peft's task type (which head trains fully), and
    `head` names further modules that train fully (e.g. a freshly initialised masked-LM head)."""
    from peft import LoraConfig, TaskType, get_peft_model

    task_type = {
        "classification": TaskType.SEQ_CLS,
        "token-classification": TaskType.TOKEN_CLS,
        "causal-lm": TaskType.CAUSAL_LM,
    }.get(task)
    heads = list(HEADS) + list(head or [])
    targets = cfg.target_modules
    if targets is None or targets == "all-linear":
        targets = linear_targets(model, heads)
    config = LoraConfig(
        task_type=task_type,
        r=cfg.r,
        lora_alpha=cfg.alpha if cfg.alpha is not None else 2 * cfg.r,
        lora_dropout=cfg.dropout,
        target_modules=targets,
        modules_to_save=head,
    )
    try:
        with warnings.catch_warnings():  # peft calls a transformers API deprecated for v6
            warnings.simplefilter("ignore", FutureWarning)
            return get_peft_model(model, config)
    except ValueError as exc:
        from tunelab.errors import ConfigError

        raise ConfigError("method.target_modules", str(exc).splitlines()[0]) from None


def save(model, out_dir: Path, cfg: MethodConfig) -> None:
    """The adapter folded into the base (`merge: true`), or the adapter alone."""
    if cfg.merge:
        model = model.merge_and_unload(safe_merge=True)
    model.save_pretrained(out_dir, safe_serialization=True)


def save_adapter(model, out_dir: Path) -> None:
    """The adapter alone: adapter_config.json + adapter_model.safetensors (loads with peft)."""
    model.save_pretrained(out_dir, safe_serialization=True)
