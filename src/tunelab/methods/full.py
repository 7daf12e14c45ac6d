"""Full fine-tuning: every weight trains."""

from __future__ import annotations

from pathlib import Path

from tunelab.config.schema import MethodConfig


def apply(model, cfg: MethodConfig, task: str, head: list[str] | None = None):
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def save(model, out_dir: Path, cfg: MethodConfig) -> None:
    """A plain Hugging Face model folder (config.json + model.safetensors)."""
    model.save_pretrained(out_dir, safe_serialization=True)
