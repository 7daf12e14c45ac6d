"""IA3 through peft: learned vectors that rescale attention keys/values and the FFN's
activations ((IA)^3, Liu et al. 2022); the fewest trainable parameters of the family. The
vectors fold into the base weights, so model/ is a plain model folder by default.
"""

from __future__ import annotations

from tunelab.config.schema import MethodConfig
from tunelab.methods.peft_common import (  # noqa: F401
    save,
    save_adapter,
    task_type,
    warm_started,
    wrap,
)

# Names of FFN output projections across architectures: IA3 scales their inputs.
FFN_OUTPUTS = ("output.dense", "down_proj", "fc2", "wo", "c_proj", "dense_4h_to_h")


def refusal(cfg: MethodConfig, task: str, model_config=None) -> str | None:
    """peft cannot merge IA3 beside a warm start's fully trained cross-attention blocks
    (its unload expects every module it kept to be a linear layer)."""
    if cfg.merges and warm_started(task, model_config):
        return (
            "peft cannot fold IA3 into an encoder-decoder warm-started from an encoder "
            "(BERT2BERT); set method.merge: false (model/ is then the adapter) or use lora"
        )
    return None


def apply(model, cfg: MethodConfig, task: str, head: list[str] | None = None):
    from peft import IA3Config

    targets = cfg.target_modules
    feedforward = None
    if targets is None and model.config.model_type == "encoder-decoder":
        targets, feedforward = _warm_start_defaults(model, head or [])
    elif isinstance(targets, list):
        feedforward = [t for t in targets if t.endswith(FFN_OUTPUTS)]
    return wrap(
        model,
        IA3Config(
            task_type=task_type(task),
            target_modules=targets,  # None: peft's default for the architecture
            feedforward_modules=feedforward,
            modules_to_save=head,
        ),
    )


def _warm_start_defaults(model, head: list[str]) -> tuple[list[str], list[str]]:
    """peft has no IA3 default for an EncoderDecoderModel (BERT2BERT): its defaults for the
    architecture both halves were warm-started from, as full module names outside `head`
    (the fresh cross-attention blocks train fully; IA3 inside them would not merge)."""
    from peft.utils import (
        TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as FEEDFORWARD,
    )
    from peft.utils import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as TARGETS

    kind = model.config.encoder.model_type
    suffixes, ffn = tuple(TARGETS.get(kind) or ()), tuple(FEEDFORWARD.get(kind) or ())

    def outside_head(name: str) -> bool:
        return not any(name == h or name.startswith(h + ".") for h in head)

    names = [
        n for n, _ in model.named_modules() if n.endswith(suffixes) and "." in n and outside_head(n)
    ]
    return names, [n for n in names if n.endswith(ffn)]
