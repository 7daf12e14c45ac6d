"""Tokenizer fixes that models need before they can be fine-tuned."""

from __future__ import annotations


def fix_special_tokens(tokenizer, config) -> None:
    """Make sure a pad token exists and the model config agrees with the tokenizer.

    Decoder-only models (Llama, SmolLM2) often ship without a pad token; padding with EOS
    is the usual fix and is safe because padded positions are masked out.
    """
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        elif tokenizer.unk_token is not None:
            tokenizer.pad_token = tokenizer.unk_token
    for name in ("pad", "eos", "bos"):
        tok_id = getattr(tokenizer, f"{name}_token_id", None)
        if tok_id is not None and getattr(config, f"{name}_token_id", None) is None:
            setattr(config, f"{name}_token_id", tok_id)
    if (
        getattr(config, "pad_token_id", None) != tokenizer.pad_token_id
        and tokenizer.pad_token_id is not None
    ):
        config.pad_token_id = tokenizer.pad_token_id


def encode_uncut(tokenizer, *args, **kwargs):
    """`tokenizer(*args, **kwargs)` without truncation or padding, for ids tunelab measures or
    cuts itself: lengths to choose max_length from, documents cut into blocks, rows fitted by
    data.too_long later.

    transformers warns "Token indices sequence length is longer than the specified maximum
    sequence length for this model" on such ids, meant for ids fed to the model as they are;
    tunelab never feeds these, so the warning only alarmed users of runs that truncate.
    `verbose=False` drops exactly it (with padding off it is the one message verbose governs)
    and, unlike silencing transformers' logger, leaves the tokenizer's once-only flag unset: a
    later call that really passes too-long ids still warns.
    """
    return tokenizer(*args, truncation=False, padding=False, verbose=False, **kwargs)
