"""Hand-made run folders with a results.json, for the MLflow mirror's tests (tests/store and
tests/cli): `make_scored_run(root, name, accuracy)`. No weights: registering never loads one."""

from __future__ import annotations

import json
from pathlib import Path

from test_store_registry import make_run


def make_scored_run(root: Path, name: str, accuracy: float) -> Path:
    """test_store_registry's run folder plus a results.json with test and validation figures
    (and a NaN, which is not a metric)."""
    run = make_run(root, name)
    timing = dict.fromkeys(
        ["train_seconds", "samples_per_s", "tokens_per_s", "eval_seconds", "total_seconds"], 1.5
    ) | {"train_samples": 40, "train_tokens": 400}
    results = {
        "schema_version": 1,
        "validation": {"accuracy": accuracy - 0.05, "loss": 0.5, "per_class": {"pos": {"f1": 0.6}}},
        "test": {"accuracy": accuracy, "f1_macro": accuracy - 0.01, "loss": float("nan")},
        "timing": timing,
        "run": {
            "model": "base-model",
            "task": "classification",
            "method": "full",
            "output": str(run),
            "trainable_params": 10,
            "total_params": 10,
            "steps": 4,
            "epochs": 1.0,
            "stopped_early": False,
        },
    }
    (run / "results.json").write_text(json.dumps(results))
    return run
