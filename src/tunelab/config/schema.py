"""The schema of one run. Every section forbids unknown keys so that typos fail loudly.

`None` on a tunable field means "let tunelab choose": see `training/defaults.py` and
docs/defaults.md for what is chosen and why.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tunelab.config.generation import GenerationConfig
from tunelab.config.procedure import Procedure, StandardProcedure
from tunelab.config.search import SearchConfig

TASKS = ("classification", "token-classification", "mlm", "causal-lm", "seq2seq")
METHODS = ("full", "freeze", "lora", "dora", "qlora", "adapter", "prefix", "prompt", "ia3")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CleanConfig(_Strict):
    """Text cleaning, applied in this order; each step counted in the report."""

    enabled: bool = True
    strip_html: bool = Field(True, description="HTML/markup to plain text (entities decoded)")
    fix_mojibake: bool = Field(True, description="repair UTF-8 read as Latin-1/cp1252 (ftfy)")
    unicode_nfc: bool = True
    remove_control: bool = Field(True, description="control and zero-width characters")
    normalize_whitespace: bool = True
    drop_empty: bool = Field(True, description="drop rows whose text is empty after cleaning")
    min_chars: int | None = Field(
        None, ge=0, description="drop rows shorter than this after cleaning"
    )
    max_chars: int | None = Field(
        None, gt=0, description="drop rows longer than this after cleaning"
    )


class DedupConfig(_Strict):
    exact: bool = Field(True, description="drop repeats of the same normalized text")
    near: bool = Field(True, description="drop near-duplicates (MinHash/LSH)")
    threshold: float = Field(
        0.8, gt=0, le=1, description="estimated Jaccard similarity of word 3-gram shingles"
    )
    num_perm: int = Field(128, ge=16, le=1024)
    conflicts: Literal["drop", "majority"] = Field(
        "majority",
        description="duplicates with different labels: drop them all, or keep the majority label",
    )


class PIIConfig(_Strict):
    action: Literal["replace", "drop", "off"] = Field(
        "replace",
        description="replace with typed placeholders (<EMAIL>), drop the row, or leave as is",
    )
    types: (
        list[
            Literal["EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "IP", "URL_CREDENTIALS", "NATIONAL_ID"]
        ]
        | None
    ) = Field(None, description="None: all types")


class SplitConfig(_Strict):
    ratios: dict[str, float] | None = Field(
        None,
        description="e.g. {train: 0.8, validation: 0.1, test: 0.1}; None: keep the given files' splits",
    )
    stratify: bool = True
    group: str | None = Field(None, description="column whose rows must stay in one split")
    folds: int | None = Field(
        None, ge=2, description="k-fold: also write fold-i/ train/validation splits"
    )
    remove_leakage: bool = Field(
        True, description="drop validation/test rows whose text is in train"
    )

    @model_validator(mode="after")
    def _check(self) -> SplitConfig:
        if self.ratios is not None:
            unknown = set(self.ratios) - {"train", "validation", "test"}
            if unknown:
                raise ValueError(
                    f"ratios: unknown split {sorted(unknown)}; use train, validation, test"
                )
            if "train" not in self.ratios:
                raise ValueError("ratios: needs a train share")
            if any(v <= 0 for v in self.ratios.values()):
                raise ValueError(f"ratios: every share must be > 0, got {self.ratios}")
            total = sum(self.ratios.values())
            if abs(total - 1.0) > 1e-6:
                raise ValueError(f"ratios: must sum to 1, got {total:g} ({self.ratios})")
        return self


class BalanceConfig(_Strict):
    method: Literal["none", "oversample", "undersample", "class_weights"] = Field(
        "none", description="train split only; class_weights hands balanced weights to the loss"
    )


class BackTranslationConfig(_Strict):
    forward: str = Field(
        description="translation model source -> pivot (any loadable seq2seq model)"
    )
    backward: str = Field(description="translation model pivot -> source")
    max_new_tokens: int = Field(128, gt=0)


class AugmentConfig(_Strict):
    multiplier: float = Field(
        0.0, ge=0, description="new rows per training row (0: off; 1: doubles the split)"
    )
    methods: list[Literal["synonym", "insert", "delete", "swap", "back_translation"]] = [
        "synonym",
        "insert",
        "delete",
        "swap",
    ]
    alpha: float = Field(
        0.1, gt=0, le=0.5, description="share of words changed per operation (EDA)"
    )
    back_translation: BackTranslationConfig | None = None

    @model_validator(mode="after")
    def _check(self) -> AugmentConfig:
        if "back_translation" in self.methods and self.back_translation is None:
            raise ValueError(
                "methods: back_translation needs a back_translation: {forward, backward} section"
            )
        return self


class PrepareConfig(_Strict):
    """`tunelab data prepare` / the prepare stage of `tunelab train`; every step optional."""

    output: str | None = Field(
        None,
        description="folder for the prepared splits; None: <output>-prepared beside the run folder",
    )
    format: Literal["jsonl", "parquet"] = "jsonl"
    group: str | None = Field(
        None, description="column for the per-group label balance (bias) check"
    )
    clean: CleanConfig = CleanConfig()
    dedup: DedupConfig = DedupConfig()
    pii: PIIConfig = PIIConfig()
    split: SplitConfig = SplitConfig()
    balance: BalanceConfig = BalanceConfig()
    augment: AugmentConfig = AugmentConfig()
    seed: int = 0


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
    target: str = Field("target", description="seq2seq: the output text column")
    references: str | None = Field(
        None, description="seq2seq: column with a list of reference outputs (BLEU/ROUGE)"
    )
    prefix: str | None = Field(None, description="seq2seq: put before every source (T5 style)")
    max_target_length: int | None = Field(
        None, gt=0, description="seq2seq: target tokens; None: chosen like max_length"
    )
    too_long: Literal["truncate", "drop"] = Field(
        "truncate",
        description="causal-lm/seq2seq rows longer than max_length: cut (counted warning) or drop",
    )
    packing: bool = Field(
        True,
        description="causal-lm: several examples per sequence (isolated); false: one per row, "
        "length-grouped batches",
    )
    prepare: PrepareConfig | None = Field(
        None, description="clean/dedup/anonymize/split/balance/augment first"
    )
    clean_markup: Literal["auto", True, False] = Field(
        "auto",
        description="classification without data.prepare: strip HTML tags and entities from "
        "the text columns (cleaned copies; your files stay); auto: when the text has any",
    )

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if self.prepare is not None and self.clean_markup != "auto":
            raise ValueError(
                "clean_markup: with data.prepare, markup is cleaned by "
                "data.prepare.clean.strip_html; set that instead"
            )
        return self


class MethodConfig(_Strict):
    """Which parameters train (docs/methods.md compares them)."""

    name: Literal[
        "full", "freeze", "lora", "dora", "qlora", "adapter", "prefix", "prompt", "ia3"
    ] = "lora"
    # freeze
    train_layers: int | str | list[int] = Field(
        2,
        description="freeze: an int k trains the top k layers; a range string '0-1,4' or a list "
        "of layer indices (negative counts from the top) trains exactly those",
    )
    train_embeddings: bool = Field(False, description="freeze: also train the embeddings")
    # lora / dora / qlora
    r: int = Field(16, gt=0)
    alpha: int | None = Field(None, gt=0, description="None: 2 * r")
    dropout: float = Field(0.1, ge=0, lt=1)
    rslora: bool = Field(
        False, description="lora/dora: scale updates by alpha/sqrt(r) (rank-stabilized LoRA)"
    )
    target_modules: list[str] | str | None = Field(
        None,
        description="lora/dora/qlora/ia3: module names or 'all-linear'; None: every linear "
        "layer outside the head (ia3: peft's per-architecture default)",
    )
    # adapter (bottleneck)
    adapter_size: int = Field(64, gt=0, description="adapter: bottleneck width")
    adapter_placement: Literal["pfeiffer", "houlsby"] = Field(
        "pfeiffer",
        description="adapter: after each FFN (pfeiffer) or after attention and FFN (houlsby)",
    )
    # prefix / prompt
    num_virtual_tokens: int = Field(20, gt=0, description="prefix/prompt: learned tokens")
    prompt_init: str | None = Field(
        None, description="prompt: initialise the soft prompt from this text's embeddings"
    )
    merge: bool | None = Field(
        None,
        description="fold the trained update into the base so model/ is a plain model folder "
        "(adapter/ keeps the update alone); None: where the method allows (lora, dora, ia3; "
        "qlora keeps the adapter alone); false: model/ is the update alone",
    )

    @model_validator(mode="after")
    def _check(self) -> MethodConfig:
        if self.merge and self.name in ("adapter", "prefix", "prompt"):
            raise ValueError(
                f"merge: {self.name} cannot be folded into the base weights; leave merge unset"
            )
        if isinstance(self.train_layers, int) and self.train_layers < 0:
            raise ValueError("train_layers: must be >= 0 (or a range like '0-1,4')")
        return self

    @property
    def merges(self) -> bool:
        """Whether model/ holds the update folded into the base."""
        if self.name in ("adapter", "prefix", "prompt", "full", "freeze"):
            return False
        if self.name == "qlora":  # the adapter applies to a full-precision base anywhere
            return bool(self.merge)
        return self.merge is not False


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


class RunConfig(_Strict):
    model: str = Field(description="packaged alias | local HF dir | hub id | path/to/file.gguf")
    task: Literal["classification", "token-classification", "mlm", "causal-lm", "seq2seq"] = (
        "classification"
    )
    data: DataConfig | None = Field(
        None, description="required, except with procedure multitask (each task has its own)"
    )
    method: MethodConfig = MethodConfig()
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

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        if self.data is None:
            if self.procedure.name != "multitask":
                raise ValueError("data: required key is missing")
            if self.train.folds is not None:
                raise ValueError("train.folds: needs data.train (not available with multitask)")
            return self
        if self.train.folds is not None:
            _check_folds(self.data)
        if self.data.text_pair is not None and self.data.text_pair == self.data.text:
            raise ValueError("data.text_pair: must differ from data.text")
        if self.task != "classification" and self.data.text_pair is not None:
            raise ValueError(
                f"data.text_pair: sentence pairs are for classification, not task '{self.task}'"
            )
        if (
            self.method.name in ("prefix", "prompt")
            and self.task == "causal-lm"
            and self.data.packing
        ):
            raise ValueError(
                f"data.packing: {self.method.name} tuning prepends virtual tokens to every "
                "sequence, which packed (several examples per row) batches cannot take; "
                "set data.packing: false"
            )
        if self.data.clean_markup is True and self.task != "classification":
            raise ValueError(
                f"data.clean_markup: cleans classification text, not task '{self.task}' "
                "(markup may be content there, e.g. code); remove it"
            )
        if self.task == "token-classification" and self.data.prepare is not None:
            raise ValueError(
                "data.prepare: works on text columns; token-classification rows are word lists"
            )
        return self
