"""The masked-LM model of `task: mlm`: the encoder with its MLM head, and the pretrained
pooler carried along so the saved model starts a classifier as well as the original did.

Only safetensors weights load and remote code stays off (models/loading.py's rule).
"""

from __future__ import annotations

from pathlib import Path

from tunelab.errors import ConfigError


def load_model(source, data, cfg, tokenizer):
    """The encoder with a masked-LM head (safetensors only, no remote code).

    Checkpoints saved without an MLM head (sentence-transformers weights such as the packaged
    all-minilm-l6-v2) load with a freshly initialised head: for BERT the decoder is tied to
    the word embeddings, so only the transform layer (dense + LayerNorm) and the output bias
    are new. The checkpoint's pooler, which *ForMaskedLM models drop, is carried along (see
    `keep_pooler`) so the classifier later started from the saved model gets it back.
    """
    from transformers import AutoModelForMaskedLM
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    from tunelab.models.loading import load_config, load_with_head

    base_config = load_config(source)
    if base_config.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        raise ConfigError(
            "task",
            f"mlm needs an encoder with a masked-LM head (BERT, RoBERTa, ...); "
            f"'{source.spec}' is a {base_config.model_type} model",
        )
    model = load_with_head(
        source, AutoModelForMaskedLM, dropout=cfg.train.dropout, tokenizer=tokenizer
    )
    if Path(source.path).is_dir():
        keep_pooler(model, Path(source.path))
    return model


def keep_pooler(model, folder: Path) -> bool:
    """Carry the checkpoint's pooler through MLM training; True when one was found.

    *ForMaskedLM models are built without the pooler, so saving one would lose it and a
    classifier started from the result (which uses the pooler) would get a random one. The
    weights go back in as buffers: saved as `<prefix>.pooler.dense.*`, never trained, no
    forward cost (the holder returns None, which BERT-style models accept for "no pooler").
    """
    import torch
    from safetensors import safe_open

    prefix = model.base_model_prefix
    encoder = getattr(model, prefix, None)
    if encoder is None or not hasattr(encoder, "pooler") or encoder.pooler is not None:
        return False
    names = [f"{k}pooler.dense.{w}" for k in ("", f"{prefix}.") for w in ("weight", "bias")]
    found: dict[str, torch.Tensor] = {}
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for key in set(names) & set(f.keys()):
                found[key.rsplit(".", 1)[-1]] = f.get_tensor(key)
    if set(found) != {"weight", "bias"}:
        return False

    class PoolerWeights(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dense = torch.nn.Module()
            for k, v in found.items():
                self.dense.register_buffer(k, v.to(model.dtype))

        def forward(self, hidden: torch.Tensor) -> None:
            return None

    encoder.pooler = PoolerWeights()
    return True


def head_modules(model) -> list[str]:
    """Names of the MLM head's leaf modules with weights of their own (BERT:
    `cls.predictions.transform.dense` and `.LayerNorm`; not the decoder, which is the word
    embeddings). Under LoRA these should train fully (peft `modules_to_save`): a head that
    was freshly initialised cannot become useful through low-rank updates alone."""
    prefix = model.base_model_prefix
    tied = {id(p) for p in model.get_input_embeddings().parameters()}
    out = []
    for name, module in model.named_modules():
        if not name or name == prefix or name.startswith(prefix + ".") or any(module.children()):
            continue
        own = list(module.parameters(recurse=False))
        if own and not any(id(p) in tied for p in own):
            out.append(name)
    return out
