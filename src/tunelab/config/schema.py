"""The schema of one run. Every section forbids unknown keys so that typos fail loudly.

`None` on a tunable field means "let tunelab choose": see `training/defaults.py` and
docs/defaults.md for what is chosen and why.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TASKS = ("classification",)
METHODS = ("full", "freeze", "lora")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Strict):
    """Where the data is and which columns hold what."""

    train: str = Field(
        description="training file (.csv .tsv .jsonl .json .parquet) or HF datasets dir"
    )
    validation: str | None = Field(
        None, description="optional; split off train (stratified) when absent"
    )
    test: str | None = None
    text: str = "text"
    text_pair: str | None = Field(None, description="second text column for sentence-pair tasks")
    label: str = "label"
    label_names: list[str] | None = Field(
        None, description="label order; for integer labels, the name of label i"
    )
    validation_size: float = Field(
        0.1, gt=0, lt=1, description="share of train held out when no validation file"
    )
    max_length: int | None = Field(
        None, gt=0, description="tokens; None: chosen from the length distribution"
    )
    max_train_rows: int | None = Field(None, gt=0, description="use only the first N training rows")


class MethodConfig(_Strict):
    """Which parameters train."""

    name: Literal["full", "freeze", "lora"] = "lora"
    # freeze: the classification head and the top `train_layers` encoder layers train.
    train_layers: int = Field(2, ge=0)
    # lora
    r: int = Field(16, gt=0)
    alpha: int | None = Field(None, gt=0, description="None: 2 * r")
    dropout: float = Field(0.1, ge=0, lt=1)
    target_modules: list[str] | str | None = Field(
        None, description="module names or 'all-linear'; None: the attention and FFN projections"
    )
    merge: bool = Field(
        True,
        description="lora: model/ holds the adapter folded into the base (adapter/ keeps the adapter alone); false: model/ is the adapter",
    )


class EarlyStoppingConfig(_Strict):
    enabled: bool = True
    metric: str | None = Field(
        None, description="validation metric; None: f1_macro (loss for regression)"
    )
    mode: Literal["max", "min"] | None = None
    patience: int = Field(3, ge=1, description="evaluations without improvement before stopping")
    min_delta: float = Field(0.0, ge=0)


class TrainConfig(_Strict):
    epochs: float | None = Field(None, gt=0, description="None: chosen from the dataset size")
    max_steps: int | None = Field(None, gt=0, description="stop after this many optimizer steps")
    batch_size: int = Field(32, gt=0)
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimizer step")
    lr: float | None = Field(
        None, gt=0, description="None: by method (full 5e-5, freeze 2e-4, lora 1e-3)"
    )
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    max_grad_norm: float | None = Field(1.0, gt=0)
    dropout: float | None = Field(None, ge=0, lt=1, description="override the model's dropout")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    group_by_length: bool = True
    class_weights: Literal["auto", "balanced", "none"] = Field(
        "auto", description="auto: balanced weights when the largest class is > 1.5x the smallest"
    )
    eval_steps: int | None = Field(None, gt=0, description="None: evaluate once per epoch")
    save_steps: int | None = Field(None, gt=0, description="None: checkpoint at every evaluation")
    keep_checkpoints: int = Field(2, ge=1)
    log_steps: int = Field(10, gt=0)
    seed: int = 0
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()


class EvalConfig(_Strict):
    batch_size: int = Field(64, gt=0)
    baselines: list[Literal["majority", "tfidf_logreg", "linear_probe"]] = [
        "majority",
        "tfidf_logreg",
        "linear_probe",
    ]


class RunConfig(_Strict):
    model: str = Field(description="packaged alias | local HF dir | hub id | path/to/file.gguf")
    task: Literal["classification"] = "classification"
    data: DataConfig
    method: MethodConfig = MethodConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    output: str = "runs/run"
    versions: dict[str, str] | None = Field(
        None, description="written by tunelab into a run's config.yaml; ignored on input"
    )

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        if self.data.text_pair is not None and self.data.text_pair == self.data.text:
            raise ValueError("data.text_pair: must differ from data.text")
        return self
