"""seq2seq: text -> text (summarization, translation, generative QA) with an encoder-decoder.

The model is any encoder-decoder folder (T5, BART, Marian... through AutoModelForSeq2SeqLM),
or an encoder-only checkpoint (BERT family, e.g. the packaged `all-minilm-l6-v2`), which is
warm-started into an EncoderDecoderModel ("BERT2BERT", Rothe et al. 2020): the decoder copies
the encoder's weights and gets new cross-attention, as no pretrained seq2seq model is at hand
offline. Training is teacher-forced cross-entropy on the target tokens; evaluation adds
generation and BLEU/chrF/ROUGE/exact match (evaluation/scoring/seq2seq.py).
"""

from __future__ import annotations

import numpy as np

from tunelab.config.schema import RunConfig
from tunelab.data.batching import Features
from tunelab.data.batching import collate as pad_collate
from tunelab.errors import ConfigError
from tunelab.models.encoder_decoder import end_ids
from tunelab.tasks.base import Task
from tunelab.tasks.classification import TaskData
from tunelab.tasks.seq2seq_data import (
    Seq2SeqFeatures,
    Seq2SeqSettings,
    Seq2SeqSplit,
    cut,
    encode_sources,
    encode_targets,
    hold_out,
    read_split,
    target_limit,
)

NAME = "seq2seq"
DEFAULT_METRIC = "loss"
DEFAULT_METRIC_WHY = (
    "validation loss on the target tokens (teacher forcing); lower is better, and unlike "
    "BLEU/ROUGE it does not depend on eval.generate_rows"
)
SCORE_BASE_MODEL = True  # the untrained model's loss and BLEU/ROUGE are the comparison
IGNORE = -100

__all__ = [
    "Seq2SeqFeatures",
    "Seq2SeqSettings",
    "Seq2SeqSplit",
    "read_split",
    "load_data",
    "featurize",
    "collate",
    "load_model",
    "head_modules",
    "loss",
    "class_weights",
]


def load_data(cfg: RunConfig) -> TaskData:
    """Read train (and validation/test when given); hold out `validation_size` of train rows
    (seeded) when there is no validation file. No labels: `TaskData.labels` is None."""
    d = cfg.data
    settings = Seq2SeqSettings.from_data_config(
        d, generate_rows=cfg.eval.generate_rows, generation=cfg.generation
    )
    splits = {"train": read_split("train", d.train, d, settings=settings)}
    if d.max_train_rows:
        splits["train"] = splits["train"].take(
            "train", range(min(d.max_train_rows, len(splits["train"])))
        )
    for name in ("validation", "test"):
        if getattr(d, name):
            splits[name] = read_split(name, getattr(d, name), d, settings=settings)
    from_train = "validation" not in splits
    if from_train:
        splits["train"], splits["validation"] = hold_out(
            splits["train"], d.validation_size, cfg.train.seed
        )
    settings.train_targets = splits["train"].targets
    return TaskData(labels=None, splits=splits, validation_from_train=from_train)


def featurize(split: Seq2SeqSplit, tokenizer, max_length: int | None) -> Features:
    """Source ids (input_ids, attention_mask) and label ids per row.

    `max_length=None` returns the source ids only (runs/train.py measures lengths so). Otherwise
    sources are cut to max_length and targets to the target limit (data.max_target_length or
    chosen from the training targets); training rows over a limit are cut or dropped as
    data.too_long says, evaluation rows are always cut (every row is scored), and a count
    is printed."""
    s = split.settings
    sources = encode_sources(tokenizer, split.sources, s.prefix)
    if max_length is None:
        return Features({"input_ids": sources})
    limit = target_limit(s, tokenizer)
    targets = encode_targets(tokenizer, split.targets)
    _, end = end_ids(tokenizer)
    over = [
        i for i, (x, y) in enumerate(zip(sources, targets)) if len(x) > max_length or len(y) > limit
    ]
    drop = set(over) if s.too_long == "drop" and split.name == "train" else set()
    if over:
        action = f"{len(drop)} dropped" if drop else f"{len(over)} truncated"
        print(
            f"{split.file} ({split.name}): {len(over)} of {len(sources)} rows are longer than "
            f"data.max_length {max_length} (source) or data.max_target_length {limit} "
            f"(target): {action}"
        )
    keep = [i for i in range(len(sources)) if i not in drop]
    ids = [cut(sources[i], max_length, end) for i in keep]
    labels = np.empty(len(keep), dtype=object)
    labels[:] = [cut(targets[i], limit, end) for i in keep]
    return Seq2SeqFeatures(
        columns={"input_ids": ids, "attention_mask": [[1] * len(x) for x in ids]},
        labels=labels,
        sources=[split.sources[i] for i in keep],
        references=[split.references[i] for i in keep],
        tokenizer=tokenizer,
        settings=s,
        target_limit=limit,
    )


def collate(
    features: Seq2SeqFeatures, index: np.ndarray, pad_id: int, decoder_start: int | None = None
) -> dict:
    """Sources padded to the batch's longest (input_ids, attention_mask), `labels` (B, L) padded
    with -100, and `decoder_input_ids` (B, L): the labels shifted right behind the decoder start
    token, pads as pad_id (the model is called without labels, so it cannot shift them itself).
    `decoder_start` defaults to the one load_model recorded."""
    import torch

    start = decoder_start if decoder_start is not None else features.settings.decoder_start_id
    if start is None:
        raise ValueError("seq2seq collate: no decoder start token (load_model records it)")
    batch = pad_collate(Features(features.columns), index, pad_id)
    rows = features.labels[index]
    width = max(len(r) for r in rows)
    labels = np.full((len(index), width), IGNORE, dtype=np.int64)  # (B, L)
    for j, row in enumerate(rows):
        labels[j, : len(row)] = row
    decoder = np.full_like(labels, pad_id)  # (B, L)
    decoder[:, 0] = start
    decoder[:, 1:] = np.where(labels[:, :-1] == IGNORE, pad_id, labels[:, :-1])
    batch["decoder_input_ids"] = torch.from_numpy(decoder)
    batch["labels"] = torch.from_numpy(labels)
    return batch


def decoder_start_id(model) -> int | None:
    """The decoder start token of an encoder-decoder model (config, else generation config)."""
    start = getattr(model.config, "decoder_start_token_id", None)
    if start is None:
        start = getattr(getattr(model, "generation_config", None), "decoder_start_token_id", None)
    return start


def load_model(source, data: TaskData, cfg: RunConfig, tokenizer):
    """An encoder-decoder with its LM head; an encoder-only checkpoint is warm-started into
    one (printed). The decoding strategy of cfg.generation (greedy/beams/sampling, repetition
    penalty) goes into the model's generation config, so the saved model/ decodes the same way
    in plain transformers. Records the decoder start token for collate."""
    from tunelab.models.loading import load_config

    config = load_config(source)
    if getattr(config, "is_encoder_decoder", False):
        from transformers import AutoModelForSeq2SeqLM

        from tunelab.models.loading import load_with_head

        model = load_with_head(
            source, AutoModelForSeq2SeqLM, dropout=cfg.train.dropout, tokenizer=tokenizer
        )
    else:
        from tunelab.models.encoder_decoder import is_decoder_only, warm_start

        if is_decoder_only(config):
            raise ConfigError(
                "model",
                f"'{cfg.model}' is a decoder-only ({config.model_type}) model; seq2seq needs an "
                "encoder-decoder or an encoder to warm-start one. Use task: causal-lm with "
                "prompt/completion rows instead",
            )
        print(
            f"seq2seq: '{cfg.model}' is an encoder ({config.model_type}); warm-starting an "
            "encoder-decoder from it: the decoder copies its weights, cross-attention is new"
        )
        model = warm_start(source, tokenizer, cfg.train.dropout)
    gen = cfg.generation.generate_kwargs()
    gen.pop("max_new_tokens")
    model.generation_config.update(**gen)
    model.config.use_cache = False  # training: no KV cache (generation turns it back on)
    start = decoder_start_id(model)
    if start is None:
        raise ConfigError("model", f"'{cfg.model}' has no decoder_start_token_id in its config")
    for split in data.splits.values():
        split.settings.decoder_start_id = start
    return model


def head_modules(model) -> list[str] | None:
    """Modules a warm start created fresh: every cross-attention block, and the decoder's
    prediction head layers that have weights of their own (BERT `cls.predictions.transform`,
    RoBERTa `lm_head.dense`; not the output layer, which is the word embeddings). Under LoRA
    they train fully, as low-rank updates on random weights learn little (a saved warm start
    trained further gets the same, which only trains more). None for any other model: a
    pretrained encoder-decoder's layers are all pretrained."""
    if type(model).__name__ != "EncoderDecoderModel":
        return None
    decoder = model.decoder
    base = decoder.base_model_prefix
    tied = {id(p) for p in decoder.get_input_embeddings().parameters()}
    out = []
    for name, module in decoder.named_modules():
        if name.endswith("crossattention"):
            out.append(f"decoder.{name}")
        elif name and name != base and not name.startswith(base + "."):
            own = list(module.parameters(recurse=False))
            if own and not any(module.children()) and not any(id(p) in tied for p in own):
                out.append(f"decoder.{name}")
    return out


def loss(logits, labels, weights=None):
    """Mean cross-entropy over target tokens: logits (B, L, V) at position t predict labels
    at t (the decoder input is already shifted right), -100 skipped."""
    import torch.nn.functional as F

    return F.cross_entropy(
        logits.float().reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=IGNORE
    )


def class_weights(y, labels, mode):
    """No classes, so no class weights."""
    return None


def model_meta(cfg, meta) -> dict:
    """tunelab.json's columns also name the target, reference and prefix settings, so
    `tunelab eval` reads rows as training did."""
    d = cfg.data
    columns = {**(meta.get("columns") or {})}
    columns.update(target=d.target, references=d.references, prefix=d.prefix)
    return {"columns": columns}


TASK = Task(
    name=NAME,
    head_kind="encoder-decoder",
    auto_model="AutoModelForSeq2SeqLM",
    peft_task_type="SEQ_2_SEQ_LM",
    default_metric=DEFAULT_METRIC,
    default_metric_why=DEFAULT_METRIC_WHY,
    generates=True,
    score_base_model=SCORE_BASE_MODEL,
    pipeline_tag="text2text-generation",
    card_use="turning inputs into outputs like those of its training data",
    serve_kind="generate",  # /v1/completions, through the request batcher (serving/)
    architectures=("ForConditionalGeneration",),
    load_data=load_data,
    featurize=featurize,
    load_model=load_model,
    loss=loss,
    read_split=read_split,
    collate=collate,
    class_weights=class_weights,
    head_modules=head_modules,
    model_meta=model_meta,
)
