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
