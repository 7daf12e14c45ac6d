"""The `data:` section of a run config (and of each `procedure: multitask` task): where the
data is, which columns hold what, and the optional prepare stage (clean, dedup, PII, split,
balance, augment)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tunelab.config.tasks import readers, task_rules


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
    question: str = Field("question", description="extractive-qa: the question column")
    context: str = Field("context", description="extractive-qa: the context (paragraph) column")
    answers: str = Field(
        "answers",
        description='extractive-qa: gold answers, {"text": [...], "answer_start": [...]} per row',
    )
    doc_stride: int | None = Field(
        None,
        gt=0,
        description="extractive-qa: overlap in tokens of the windows a long context is cut into; "
        "None: 128 at max_length 384, scaled with it",
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


def check_text_pair(data: DataConfig, task: str) -> None:
    """The sentence-pair column: another column than the text, and for classification only."""
    if data.text_pair is not None and data.text_pair == data.text:
        raise ValueError("data.text_pair: must differ from data.text")
    if data.text_pair is not None and "text_pair" not in task_rules(task).data_keys:
        raise ValueError(
            f"data.text_pair: sentence pairs are for {readers('text_pair')}, not task '{task}'"
        )
