"""seq2seq data: read (source, target, references) rows, tokenize them, fit them to the limits.

Labels are the target ids ending in the tokenizer's end token (EOS / [SEP]); the decoder's
input is the same ids shifted right behind the model's decoder start token (collate). A
BERT-style tokenizer (a [CLS] but no BOS) wraps every text in [CLS] ... [SEP]; its leading
[CLS] is dropped from the labels because a warm-started BERT2BERT decoder starts *from*
[CLS]. BART-style tokenizers keep their <s> (BART is trained to emit it), T5 adds none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tunelab.config.generation import GenerationConfig
from tunelab.config.schema import DataConfig
from tunelab.data.batching import Features
from tunelab.errors import DataError
from tunelab.models.encoder_decoder import end_ids


@dataclass
class Seq2SeqSettings:
    """What featurize, collate and the scorer need beyond (split, tokenizer, max_length).
    One object is shared by every split of a run (and the features made from them)."""

    prefix: str = ""
    max_target_length: int | None = None  # data.max_target_length; None: chosen from train
    too_long: str = "truncate"  # train rows over a limit: "truncate" or "drop"
    generate_rows: int | None = 200  # eval.generate_rows
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    train_targets: list[str] | None = None  # the training targets, to choose a target limit
    decoder_start_id: int | None = None  # the model's decoder start token (set by load_model)
    chosen_target_length: dict | None = None  # {"value", "why"} once chosen

    @classmethod
    def from_data_config(cls, d: DataConfig, **more) -> Seq2SeqSettings:
        return cls(
            prefix=d.prefix or "",
            max_target_length=d.max_target_length,
            too_long=d.too_long,
            **more,
        )


@dataclass
class Seq2SeqSplit:
    """One split: source texts, target texts, reference lists (for BLEU/ROUGE), file rows."""

    name: str
    file: str
    sources: list[str]
    targets: list[str]
    references: list[list[str]]
    rows: list[int]
    settings: Seq2SeqSettings

    def __len__(self) -> int:
        return len(self.sources)

    def take(self, name: str, index) -> Seq2SeqSplit:
        pick = lambda xs: [xs[i] for i in index]  # noqa: E731
        return Seq2SeqSplit(
            name,
            self.file,
            pick(self.sources),
            pick(self.targets),
            pick(self.references),
            pick(self.rows),
            self.settings,
        )


@dataclass
class Seq2SeqFeatures(Features):
    """Source ids (`columns`), label ids per row (`labels`, an object array: target + end
    token), and what generation needs: the source texts, the references, the tokenizer (to
    decode) and the shared settings (generation config, decoder start)."""

    sources: list[str] = field(default_factory=list)
    references: list[list[str]] = field(default_factory=list)
    tokenizer: object = None
    settings: Seq2SeqSettings = field(default_factory=Seq2SeqSettings)
    target_limit: int | None = None

    @property
    def lengths(self) -> np.ndarray:
        """Source + target tokens per row: what a row costs, for length-grouped batches."""
        if self.labels is None:
            return super().lengths
        return np.fromiter(
            (len(s) + len(t) for s, t in zip(self.columns["input_ids"], self.labels)),
            dtype=np.int64,
        )


def _references(df, file: str, column: str, targets: list[str]) -> list[list[str]]:
    """Per row, the non-blank strings of a list column (a plain string counts as one);
    a row whose list is empty falls back to its target."""
    out = []
    for k, (row, value) in enumerate(zip(df.index, df[column].tolist())):
        if isinstance(value, str):
            value = [value]
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        elif value is None or (isinstance(value, float) and np.isnan(value)):
            value = []
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise DataError(
                file,
                f"expected a list of reference texts, got {type(value).__name__}",
                row=int(row),
                column=column,
            )
        refs = [v for v in value if v.strip()]
        out.append(refs or [targets[k]])
    return out


def read_split(
    name: str, df_or_path, cfg: DataConfig, labels=None, settings: Seq2SeqSettings | None = None
) -> Seq2SeqSplit:
    """A split from a file path or a read DataFrame: `cfg.text` -> sources, `cfg.target` ->
    targets, `cfg.references` -> reference lists (else [target]). A missing column or an
    empty text is a DataError naming the file, row and column."""
    from tunelab.data import read_table, require_columns, text_column

    df = read_table(df_or_path) if isinstance(df_or_path, (str, Path)) else df_or_path
    file = df.attrs.get("source", name)
    columns = [cfg.text, cfg.target] + ([cfg.references] if cfg.references else [])
    require_columns(df, file, columns)
    sources = text_column(df, file, cfg.text)
    targets = text_column(df, file, cfg.target)
    refs = (
        _references(df, file, cfg.references, targets) if cfg.references else [[t] for t in targets]
    )
    settings = settings or Seq2SeqSettings.from_data_config(cfg)
    return Seq2SeqSplit(name, file, sources, targets, refs, [int(r) for r in df.index], settings)


def hold_out(split: Seq2SeqSplit, size: float, seed: int) -> tuple[Seq2SeqSplit, Seq2SeqSplit]:
    """A seeded random `size` share of rows as validation; both keep file order."""
    n = len(split)
    if n < 2:
        raise DataError(
            split.file,
            f"{n} row; at least 2 are needed to hold out validation (or give data.validation)",
        )
    n_val = min(n - 1, max(1, round(n * size)))
    held = np.zeros(n, dtype=bool)
    held[np.random.default_rng(seed).permutation(n)[:n_val]] = True
    return split.take("train", np.flatnonzero(~held)), split.take(
        "validation", np.flatnonzero(held)
    )


def encode_targets(tokenizer, targets: list[str]) -> list[list[int]]:
    """Label ids per target: the tokenizer's own target encoding, minus a leading [CLS] for
    BERT-style tokenizers (see the module docstring); always ending in an end token."""
    from tunelab.models.tokenizers import encode_uncut

    # long targets are fine here: they are cut to the limit later
    ids = encode_uncut(tokenizer, text_target=targets)["input_ids"]
    cls = tokenizer.cls_token_id
    if cls is not None and tokenizer.bos_token_id is None:
        ids = [x[1:] if x and x[0] == cls else x for x in ids]
    _, end = end_ids(tokenizer)
    if end is not None:
        ids = [x if x and x[-1] == end else [*x, end] for x in ids]
    return ids


def encode_sources(tokenizer, sources: list[str], prefix: str) -> list[list[int]]:
    """Source ids with the tokenizer's special tokens, `prefix` put before every text."""
    from tunelab.models.tokenizers import encode_uncut

    return encode_uncut(tokenizer, [prefix + s for s in sources])["input_ids"]  # cut later


def cut(ids: list[int], limit: int, end: int | None) -> list[int]:
    """The first `limit` tokens, keeping a final end token (EOS/[SEP]) as the last one."""
    if len(ids) <= limit:
        return ids
    if end is not None and ids[-1] == end:
        return [*ids[: limit - 1], end]
    return ids[:limit]


def target_limit(settings: Seq2SeqSettings, tokenizer) -> int:
    """data.max_target_length, else the 99th percentile of training target lengths (chosen
    once per run and printed like runs/train.py's other defaults), else the tokenizer's limit."""
    from tunelab.models.lengths import choose_max_length, model_max_length

    model_max = model_max_length(tokenizer, None)
    if settings.max_target_length is not None:
        return settings.max_target_length
    if settings.chosen_target_length is None:
        if not settings.train_targets:
            return model_max
        lengths = np.array([len(x) for x in encode_targets(tokenizer, settings.train_targets)])
        value, why = choose_max_length(lengths, model_max)
        settings.chosen_target_length = {
            "value": value,
            "why": why.replace("lengths", "target lengths"),
        }
        print(f"default data.max_target_length = {value}  ({settings.chosen_target_length['why']})")
    return settings.chosen_target_length["value"]
