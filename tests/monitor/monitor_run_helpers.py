"""A tiny trained classifier run for the monitor tests (trained in seconds on toy data)."""

from __future__ import annotations

from pathlib import Path

from conftest import tiny_config


def train_tiny_run(tiny_model: Path, toy_data: dict, root: Path, **sections) -> Path:
    """runs/clf under `root`: the tiny BERT trained one epoch on the toy sentiment rows."""
    from tunelab import api

    out = root / "clf"
    api.train(tiny_config(tiny_model, toy_data, out, train={"epochs": 1}, **sections))
    return out
