"""Checkpoints that make resuming exact: trainable weights, optimizer, scheduler, every RNG,
and the loop position. Written to a temp folder and renamed, so a crash never leaves half a
checkpoint."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from tunelab.atomic import atomic_dir


def trainable_state(model) -> dict[str, torch.Tensor]:
    return {
        n: p.detach().cpu().contiguous().clone()
        for n, p in model.named_parameters()
        if p.requires_grad
    }


def load_trainable(model, path: Path) -> None:
    state = load_file(str(path))
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        raise RuntimeError(
            f"checkpoint {path} does not fit this model: {result.unexpected_keys[:3]}"
        )


def rng_state() -> dict:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    ckpt_dir: Path, step: int, model, optimizer, scheduler, state: dict, keep: int
) -> Path:
    """checkpoints/step-N/ with everything needed to continue; prune to the newest `keep`."""

    path = ckpt_dir / f"step-{step:08d}"
    with atomic_dir(path) as tmp:
        save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng_state(),
            },
            tmp / "training_state.pt",
        )
        (tmp / "state.json").write_text(json.dumps(state, indent=2))
    for old in list_checkpoints(ckpt_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def list_checkpoints(ckpt_dir: Path) -> list[Path]:
    return sorted(p for p in ckpt_dir.glob("step-*") if (p / "state.json").is_file())


def load_checkpoint(path: Path, model, optimizer, scheduler) -> dict:
    """Restore weights, optimizer, scheduler and RNGs from `path`; return the loop state."""
    load_trainable(model, path / "trainable.safetensors")
    blob = torch.load(path / "training_state.pt", weights_only=False)
    optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    set_rng_state(blob["rng"])
    return json.loads((path / "state.json").read_text())


def save_best(ckpt_dir: Path, model, info: dict) -> None:
    with atomic_dir(ckpt_dir / "best") as tmp:
        save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
        (tmp / "state.json").write_text(json.dumps(info, indent=2))
