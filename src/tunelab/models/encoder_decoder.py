"""Building a seq2seq model from an encoder-only checkpoint (BERT2BERT warm start)."""

from __future__ import annotations


def end_ids(tokenizer) -> tuple[int | None, int | None]:
    """(start, end) tokens of a BERT2BERT-style decoder: [CLS]/[SEP], else BOS/EOS."""
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    return (
        cls if cls is not None else tokenizer.bos_token_id,
        sep if sep is not None else tokenizer.eos_token_id,
    )


def is_decoder_only(config) -> bool:
    """A causal LM (Llama, GPT-2...): it cannot become the encoder of an encoder-decoder."""
    archs = getattr(config, "architectures", None) or []
    return bool(getattr(config, "is_decoder", False)) or any(
        a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs
    )


def warm_start(source, tokenizer, dropout: float | None = None):
    """EncoderDecoderModel with encoder and decoder both loaded from `source` (the decoder with
    `is_decoder=True, add_cross_attention=True`; its cross-attention is new), and the special
    tokens set for training and generation: decoder start = [CLS] (or BOS), end = [SEP] (or
    EOS), pad = the tokenizer's pad."""
    from transformers import EncoderDecoderModel

    from tunelab.errors import ModelSourceError
    from tunelab.models.loading import (
        dropout_overrides,
        hub_errors,
        load_config,
        load_kwargs,
        quiet_transformers,
    )

    drop = dropout_overrides(load_config(source), dropout)
    kwargs = {f"{side}_{k}": v for side in ("encoder", "decoder") for k, v in drop.items()}
    try:
        with quiet_transformers(), hub_errors(source):
            model = EncoderDecoderModel.from_encoder_decoder_pretrained(
                source.path, source.path, use_safetensors=True, **load_kwargs(source), **kwargs
            )
    except (TypeError, KeyError) as exc:  # an architecture without cross-attention support
        raise ModelSourceError(
            f"cannot warm-start an encoder-decoder from '{source.spec}': {exc}"
        ) from None
    start, end = end_ids(tokenizer)
    if start is None or end is None:
        raise ModelSourceError(
            f"'{source.spec}': its tokenizer has neither [CLS]/[SEP] nor BOS/EOS to start and end "
            "the decoder's output"
        )
    settings = {
        "decoder_start_token_id": start,
        "bos_token_id": start,
        "eos_token_id": end,
        "pad_token_id": tokenizer.pad_token_id,
    }
    for key, value in settings.items():
        setattr(model.config, key, value)
        setattr(model.generation_config, key, value)
    model.config.vocab_size = model.config.decoder.vocab_size
    return model
