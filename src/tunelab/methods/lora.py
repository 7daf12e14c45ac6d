"""LoRA and DoRA through peft: low-rank updates on the chosen linear layers; the task head
trains fully. `dora` adds the weight decomposition (magnitude + direction) of DoRA;
`rslora: true` scales updates by alpha/sqrt(r) instead of alpha/r.

Saving writes the adapter alone (`adapter_config.json` + `adapter_model.safetensors`, loads
with `peft`), and unless `merge: false` also the adapter folded into the base, a plain model
folder that `transformers.pipeline` loads.
"""

from __future__ import annotations

from tunelab.config.schema import MethodConfig
from tunelab.methods.peft_common import save, save_adapter, task_type, wrap  # noqa: F401
from tunelab.tasks import get_task

HEADS = ("classifier", "score", "lm_head")  # output heads: never LoRA targets


def linear_targets(model, head: list[str], skip_tied_output: bool = False) -> list[str]:
    """Full names of every nn.Linear outside the heads: peft's "all-linear" would also wrap a
    token-classification or masked-LM head, which then cannot train fully. With
    `skip_tied_output` (DoRA), also not the output layer that shares its weight with the word
    embeddings (BERT's `cls.predictions.decoder`): DoRA's per-row norm of its zero padding row
    is 0, NaN from the first step."""
    import torch

    output = None
    if skip_tied_output and hasattr(model, "get_output_embeddings"):
        output = model.get_output_embeddings()

    def in_head(name: str) -> bool:
        return any(
            name == h or name.startswith(h + ".") or name.endswith("." + h) or f".{h}." in name
            for h in head
        )

    return [
        n
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and not in_head(n) and m is not output
    ]


def lora_config(model, cfg: MethodConfig, task: str, head: list[str] | None):
    from peft import LoraConfig

    targets = cfg.target_modules
    if targets is None or targets == "all-linear":
        targets = linear_targets(
            model, list(HEADS) + list(head or []), skip_tied_output=cfg.name == "dora"
        )
    return LoraConfig(
        task_type=task_type(task) if get_task(task).head_kind != "encoder-decoder" else None,
        r=cfg.r,
        lora_alpha=cfg.alpha if cfg.alpha is not None else 2 * cfg.r,
        lora_dropout=cfg.dropout,
        target_modules=targets,
        modules_to_save=head,
        use_rslora=cfg.rslora,
        use_dora=cfg.name == "dora",
    )


def apply(model, cfg: MethodConfig, task: str, head: list[str] | None = None):
    """Wrap `model` with LoRA (or DoRA); the task picks peft's task type (which head trains
    fully), and `head` names further modules that train fully (e.g. a fresh masked-LM head)."""
    return wrap(model, lora_config(model, cfg, task, head))
