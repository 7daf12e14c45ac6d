"""`results.json`, the final figures of a run: metrics per split, baselines, timings and
what ran (`run`). Metrics are a dict per split because each task has its own metric keys;
the sections and the keys every run writes are typed. Tasks and procedures add their own
keys (extra="allow"), which load and are written back as they were.
See output_file.py for the schema-version rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tunelab.config.output_file import output_dict, read_output, validate_output, write_output

RESULTS_FILE = "results.json"
SCHEMA_VERSION = 1


class Timing(BaseModel):
    """results["timing"]: seconds and throughput of the run's parts."""

    model_config = ConfigDict(extra="allow")

    train_seconds: float
    train_samples: int
    samples_per_s: float
    train_tokens: int
    tokens_per_s: float
    eval_seconds: float
    baseline_seconds: dict[str, float] = Field(default_factory=dict)
    total_seconds: float


class RunInfo(BaseModel):
    """results["run"]: what ran (model, task, method, procedure), its size and its course."""

    model_config = ConfigDict(extra="allow")

    model: str
    task: str  # a task name, or "multitask"
    method: str
    procedure: dict[str, Any] = Field(default_factory=dict)  # Procedure.summary()
    output: str
    trainable_params: int
    total_params: int
    saved_mb: float | None = None
    adapter_mb: float | None = None
    rows: dict[str, Any] = Field(default_factory=dict)  # split -> rows (multitask: per task)
    validation_from_train: bool | None = None
    labels: list[str] | dict[str, list[str] | None] | None = None  # multitask: per task
    models: dict[str, str] | None = None  # multitask: task -> its model folder
    steps: int
    epochs: float
    stopped_early: bool = False
    best: dict[str, Any] | None = None  # the best validation: step, metric, value
    class_weights: list[float] | None = None
    defaults_chosen: dict[str, Any] = Field(default_factory=dict)  # key -> {value, why}
    device: str = "cpu"


class RunResult(BaseModel):
    """The whole of results.json."""

    model_config = ConfigDict(extra="allow")

    schema_version: int = SCHEMA_VERSION
    validation: dict[str, Any] | None = None  # metric -> value (plus per_class, samples, ...)
    test: dict[str, Any] | None = None
    baselines: dict[str, Any] = Field(default_factory=dict)  # name -> {split: metrics, note}
    timing: Timing
    run: RunInfo
    tasks: dict[str, Any] | None = None  # multitask: name -> {task, metric, validation, test}
    distill: dict[str, Any] | None = None  # distill: teacher vs student
    forgetting: dict[str, Any] | None = None  # continual: before, after, drop
    plan: dict[str, Any] | None = None  # preflight: estimated vs measured peak memory (MiB)

    @property
    def last_split(self) -> str:
        """The split the run reports first: test when it has one, else validation."""
        return "test" if self.test is not None else "validation"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, as results.json holds it (what `tunelab train --json` prints)."""
        return output_dict(self, SCHEMA_VERSION)


def run_result(value: RunResult | dict[str, Any], where: str = RESULTS_FILE) -> RunResult:
    """A RunResult from itself or from a dict of results.json's shape."""
    if isinstance(value, RunResult):
        return value
    return validate_output(value, RunResult, SCHEMA_VERSION, where)


def read_run_result(run_dir: str | Path) -> RunResult:
    """run_dir/results.json; an error names the file (and field) when it is missing, broken,
    of the wrong shape or from a newer tunelab."""
    return read_output(Path(run_dir) / RESULTS_FILE, RunResult, SCHEMA_VERSION)


def write_run_result(run_dir: str | Path, result: RunResult) -> dict[str, Any]:
    """Write run_dir/results.json atomically; returns what was written (a dict)."""
    return write_output(Path(run_dir) / RESULTS_FILE, result, SCHEMA_VERSION)
