"""QLoRA: the base model loaded in 4-bit NF4 through bitsandbytes (double quantization,
bf16 compute), LoRA adapters in full precision on top. Needs a CUDA GPU: bitsandbytes'
4-bit matmuls run there. On a machine without one, `refusal` refuses before any weights load
and says what to use instead.
"""

from __future__ import annotations

from tunelab.config.schema import MethodConfig
from tunelab.methods import lora
from tunelab.methods.peft_common import save, save_adapter, wrap  # noqa: F401


def refusal(cfg: MethodConfig, task: str, model_config=None) -> str | None:
    """Why 4-bit loading cannot work here (None: it can)."""
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        return (
            "qlora loads the base model in 4-bit with bitsandbytes, whose 4-bit kernels need a "
            "CUDA GPU, and this machine has none. Use method.name: lora (the same adapters on a "
            "full-precision base; a 135M-1B model fits in CPU memory) or run on a GPU"
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        return "qlora needs the bitsandbytes package: pip install bitsandbytes"
    return None


def load_options(cfg: MethodConfig) -> dict:
    """from_pretrained arguments: 4-bit NF4 weights on the first GPU."""
    import torch
    from transformers import BitsAndBytesConfig

    return {
        "quantization_config": BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        ),
        "device_map": {"": 0},
    }


def apply(model, cfg: MethodConfig, task: str, head: list[str] | None = None):
    from peft import prepare_model_for_kbit_training

    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return wrap(model, lora.lora_config(model, cfg, task, head))
