"""The schema of one run. Every section forbids unknown keys so that typos fail loudly.

`None` on a tunable field means "let tunelab choose": see `training/defaults.py` and
docs/defaults.md for what is chosen and why.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tunelab.config import keys
from tunelab.config.data import (
    AugmentConfig,
    BackTranslationConfig,
    BalanceConfig,
    CleanConfig,
    DataConfig,
    DedupConfig,
    PIIConfig,
    PrepareConfig,
    SplitConfig,
    check_text_pair,
)
from tunelab.config.generation import GenerationConfig
from tunelab.config.method import FOLDABLE, METHODS, LoraMethod, MethodConfig
from tunelab.config.procedure import Procedure, StandardProcedure
from tunelab.config.search import SearchConfig
from tunelab.config.tasks import DEFAULT_TASK, TASKS, foreign_key, readers, task_rules

__all__ = [  # the sections live in data.py, method.py, ...; this module has them all
    "AugmentConfig",
    "BackTranslationConfig",
    "BalanceConfig",
    "CleanConfig",
    "DataConfig",
    "DedupConfig",
    "EarlyStoppingConfig",
    "EvalConfig",
    "GenerationConfig",
    "METHODS",
    "MethodConfig",
    "PIIConfig",
    "PrepareConfig",
    "RunConfig",
    "SplitConfig",
    "TASKS",
    "TrainConfig",
]

# the task names a config may give (tunelab.tasks.REGISTRY maps each to its module; config
# sits below tasks/ and cannot read it, so tests/tasks check the two agree)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


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
    folds: int | None = Field(
        None,
        ge=2,
        description="k-fold cross-validation: k runs, each validated on one held-out fold of "
        "train (stratified); None: off. Not with data.validation",
    )
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    trackers: list[Literal["tensorboard", "mlflow", "wandb"]] = Field(
        default_factory=lambda: ["tensorboard"],
        description="where logged steps, the config and final results go besides metrics.jsonl; "
        "mlflow and wandb are extras (pip install 'tunelab[mlflow]')",
    )
    mlflow_uri: str | None = Field(
        None,
        description="MLflow tracking URI; None: MLFLOW_TRACKING_URI, else sqlite:///<output>/mlflow.db",
    )
    mlflow_experiment: str = Field("tunelab", min_length=1, description="MLflow experiment name")
    wandb_project: str = Field("tunelab", min_length=1, description="W&B project name")
    wandb_mode: Literal["offline", "online"] | None = Field(
        None,
        description="None: WANDB_MODE, else offline (files under <output>/wandb/, "
        "upload later with `wandb sync`)",
    )


class EvalConfig(_Strict):
    batch_size: int = Field(64, gt=0)
    baselines: list[Literal["majority", "tfidf_logreg", "linear_probe"]] = Field(
        default_factory=lambda: ["majority", "tfidf_logreg", "linear_probe"],
        description="classification baselines; token-classification runs its lexicon baseline "
        "(most frequent training tag per word) unless this is []",
    )
    few_shot: int = Field(
        3,
        ge=0,
        description="causal-lm: also score the base model with this many training examples "
        "as earlier turns (base_few_shot); 0: off",
    )
    generate_rows: int | None = Field(
        200,
        ge=0,
        description="rows to generate from (seq2seq: BLEU/ROUGE; causal-lm: stop rate and "
        "samples of the test split); None: all; 0: none",
    )


def _check_folds(data: DataConfig) -> None:
    """k-fold validates on held-out folds of train: a validation split would be unused."""
    if data.validation is not None:
        raise ValueError(
            "train.folds: folds replace the validation split; drop data.validation "
            f"({data.validation}) or train.folds"
        )
    ratios = data.prepare.split.ratios if data.prepare is not None else None
    if ratios and "validation" in ratios:
        raise ValueError(
            "train.folds: folds replace the validation split; drop validation from "
            "data.prepare.split.ratios"
        )


def _check_multitask(cfg: RunConfig) -> None:
    """Each task has its own data (procedure.tasks.<i>.data) and gets one plain model."""
    if cfg.data is not None:
        raise ValueError(
            "data: procedure multitask reads each task's data from procedure.tasks.<i>.data"
        )
    if cfg.train.folds is not None:
        raise ValueError("train.folds: needs data.train (not available with multitask)")
    if cfg.method.name not in ("full", "freeze", *FOLDABLE):
        raise ValueError(
            "method.name: procedure multitask saves one plain model per task: use full, "
            f"freeze, {', '.join(FOLDABLE)}, got {cfg.method.name!r}"
        )
    if cfg.method.name in FOLDABLE and cfg.method.merge is False:
        raise ValueError(
            "method.merge: procedure multitask saves one merged model per task; "
            "false is not supported"
        )


class MonitorRule(_Strict):
    """One alert rule of `tunelab monitor`: alert when the window's `stat` `op` `value`."""

    stat: str = Field(description="dotted window statistic, e.g. embedding.mmd_p")
    op: Literal["<", ">", "<=", ">="] = "<"
    value: float
    name: str | None = None


class MonitorConfig(_Strict):
    """`tunelab monitor`'s settings for this run's served model (docs/monitoring.md)."""

    rules: list[MonitorRule] | None = Field(
        None, description="alert rules; null: the defaults (about 5% false alarms per window)"
    )
    window: int = Field(200, ge=1, description="logged rows per monitoring window")
    webhook: str | None = Field(None, description="URL that alerts are POSTed to as JSON")


class RunConfig(_Strict):
    model: str = Field(description="packaged alias | local HF dir | hub id | path/to/file.gguf")
    task: Literal[TASKS] = DEFAULT_TASK  # type: ignore[valid-type]
    data: DataConfig | None = Field(
        None, description="required, except with procedure multitask (each task has its own)"
    )
    method: MethodConfig = Field(
        default_factory=LoraMethod,
        description="which parameters train: name full | freeze | lora | dora | qlora | adapter "
        "| prefix | prompt | ia3, and that method's settings (see docs/methods.md)",
    )
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    generation: GenerationConfig = GenerationConfig()
    procedure: Procedure = Field(
        default_factory=StandardProcedure,
        description="how a step's loss is formed: standard | distill | multitask | adversarial | "
        "continual (see docs/procedures.md)",
    )
    output: str = "runs/run"
    search: SearchConfig | None = Field(
        None, description="hyperparameter search space for `tunelab tune`; ignored by train"
    )
    versions: dict[str, str] | None = Field(
        None, description="written by tunelab into a run's config.yaml; ignored on input"
    )
    monitor: MonitorConfig = Field(
        default_factory=MonitorConfig,
        description="`tunelab monitor`: alert rules, window size, webhook (docs/monitoring.md)",
    )

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        if self.procedure.name == "multitask":
            _check_multitask(self)
            return self
        if self.data is None:
            raise ValueError("data: required key is missing")
        if self.train.folds is not None:
            _check_folds(self.data)
        check_text_pair(self.data, self.task)
        rules = task_rules(self.task)
        if self.method.name in ("prefix", "prompt") and rules.packs and self.data.packing:
            raise ValueError(
                f"data.packing: {self.method.name} tuning prepends virtual tokens to every "
                "sequence, which packed (several examples per row) batches cannot take; "
                "set data.packing: false"
            )
        if self.data.clean_markup is True and "clean_markup" not in rules.data_keys:
            raise ValueError(
                f"data.clean_markup: cleans {readers('clean_markup')} text, not task "
                f"'{self.task}' (markup may be content there, e.g. code); remove it"
            )
        key = foreign_key(self.data, self.task, skip=("text_pair", "clean_markup"))
        if key is not None:
            raise ValueError(
                f"data.{key}: read by {readers(key)} only, not task '{self.task}'; remove it"
            )
        if rules.word_rows and self.data.prepare is not None:
            raise ValueError(
                f"data.prepare: works on text columns; {self.task} rows are word lists"
            )
        return self


keys.ROOT.append(RunConfig)  # the default root of config/keys.py's walks
