"""IA3 through peft: learned vectors that rescale attention keys/values and the FFN's
activations ((IA)^3, Liu et al. 2022); the fewest trainable parameters of the family. The
vectors fold into the base weights, so model/ is a plain model folder by default.
"""

from __future__ import annotations

from tunelab.config.schema import MethodConfig
from tunelab.methods.peft_common import save, save_adapter, task_type, wrap  # noqa: F401

# Names of FFN output projections across architectures: IA3 scales their inputs.
FFN_OUTPUTS = ("output.dense", "down_proj", "fc2", "wo", "c_proj", "dense_4h_to_h")


def apply(model, cfg: MethodConfig, task: str = "classification", head: list[str] | None = None):
    from peft import IA3Config

    targets = cfg.target_modules
    feedforward = None
    if isinstance(targets, list):
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
