"""The shape of a model read without its weights: config.json (or a GGUF's metadata), and
the modules a `torch.device("meta")` init builds from it.

The planner needs parameter counts per layer and the in/out sizes of every linear layer
(what LoRA wraps and what the matmuls cost); a meta init gives exactly those in well under a
second, allocating nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# task -> the transformers auto class whose head that task trains
AUTO_CLASS = {
    "classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "extractive-qa": "AutoModelForQuestionAnswering",
    "causal-lm": "AutoModelForCausalLM",
    "seq2seq": "AutoModelForSeq2SeqLM",
    "mlm": "AutoModelForMaskedLM",
}
HEAD_NAMES = ("classifier", "score", "qa_outputs", "lm_head", "cls", "pooler")
LM_HEADS = ("lm_head", "cls.predictions.decoder", "decoder")  # (B, T, V) outputs


@dataclass
class Linear:
    name: str
    fan_in: int
    fan_out: int
    layer: int | None  # index of the transformer block it sits in; None outside the blocks
    head: bool = False


@dataclass
class ModelShape:
    """What the planner knows about a model. Counts are parameters, not bytes."""

    model_type: str
    family: str  # encoder | decoder | encoder-decoder
    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_dim: int  # hidden size of the keys/values (GQA: fewer heads than the queries)
    vocab: int
    max_positions: int | None
    params: int  # every parameter of the task model (base + head), tied ones once
    embedding_params: int
    layer_params: list[int]  # per transformer block
    head_params: int
    linears: list[Linear] = field(default_factory=list)
    gated_mlp: bool = False  # gate/up/down (Llama-style) rather than in/out
    attention_dropout: float = 0.0
    lm_vocab: int = 0  # width of a (B, T, V) output: causal-lm, mlm, seq2seq; 0 for heads

    @property
    def head_dim(self) -> int:
        return self.hidden // max(1, self.heads)

    def matmul_params(self, layers: range | None = None, *, head: bool = True) -> int:
        """Weights multiplied per token: the blocks' linears (all, or those in `layers`) and
        the head's; embeddings are lookups, not matmuls."""
        n = 0
        for lin in self.linears:
            if lin.head:
                n += lin.fan_in * lin.fan_out if head else 0
            elif lin.layer is not None and (layers is None or lin.layer in layers):
                n += lin.fan_in * lin.fan_out
        return n


def _get(config, *names, default=None):
    for n in names:
        v = getattr(config, n, None)
        if v is not None:
            return v
    return default


def read_config(path: str | Path, gguf_file: Path | None = None):
    """A transformers config from a model folder, or from a .gguf's metadata (no dequantizing)."""
    from transformers import AutoConfig

    from tunelab.models.quiet import quiet_transformers

    folder = Path(path)
    with quiet_transformers():
        if (folder / "config.json").is_file() or gguf_file is None:
            return AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
        return AutoConfig.from_pretrained(
            str(gguf_file.parent), gguf_file=gguf_file.name, trust_remote_code=False
        )


def shape_from_config(config, task: str, num_labels: int = 2) -> ModelShape:
    """Build the task model on the meta device and read its sizes off the modules."""
    import torch
    import transformers
    from torch import nn

    from tunelab.models.quiet import quiet_transformers

    config = config.__class__.from_dict(config.to_dict())  # a copy: num_labels is set below
    config.num_labels = max(1, num_labels)
    if getattr(config, "pad_token_id", None) is None:
        config.pad_token_id = 0
    auto = getattr(transformers, AUTO_CLASS.get(task, "AutoModel"))
    with quiet_transformers(), torch.device("meta"):
        try:
            model = auto.from_config(config, trust_remote_code=False)
        except ValueError:  # an encoder has no causal-lm class (and so on): the bare model
            model = transformers.AutoModel.from_config(config, trust_remote_code=False)
    n_layers = int(_get(config, "num_hidden_layers", "n_layer", "num_layers", default=0))
    blocks = _find_blocks(model, n_layers)
    block_of = {id(m): i for i, blk in enumerate(blocks) for m in blk.modules()}
    linears, head_params, embedding_params = [], 0, 0
    seen: set[int] = set()
    for name, mod in model.named_modules():
        top = name.split(".")[-1]
        in_head = (
            any(name == h or name.startswith(h + ".") or f".{h}" in f".{name}" for h in HEAD_NAMES)
            and id(mod) not in block_of
        )
        if isinstance(mod, nn.Linear):
            linears.append(
                Linear(name, mod.in_features, mod.out_features, block_of.get(id(mod)), in_head)
            )
        if isinstance(mod, nn.Embedding) and id(mod.weight) not in seen:
            embedding_params += mod.weight.numel()
        if in_head:
            for p in mod.parameters(recurse=False):
                if id(p) not in seen:
                    head_params += p.numel()
        for p in mod.parameters(recurse=False):
            seen.add(id(p))
        del top
    params = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    layer_params = [sum(p.numel() for p in blk.parameters()) for blk in blocks]
    hidden = int(_get(config, "hidden_size", "d_model", "n_embd", "dim", default=0))
    heads = int(_get(config, "num_attention_heads", "n_head", "num_heads", default=1))
    kv_heads = int(_get(config, "num_key_value_heads", default=heads))
    names = {lin.name.split(".")[-1] for lin in linears}
    lm = any(lin.head and lin.fan_out >= 1000 for lin in linears)
    family = (
        "encoder-decoder"
        if getattr(config, "is_encoder_decoder", False)
        else "decoder"
        if task == "causal-lm" or _is_decoder(config)
        else "encoder"
    )
    return ModelShape(
        model_type=config.model_type,
        family=family,
        hidden=hidden,
        layers=len(blocks) or n_layers,
        intermediate=int(
            _get(config, "intermediate_size", "d_ff", "n_inner", "ffn_dim", default=4 * hidden)
        ),
        heads=heads,
        kv_dim=kv_heads * (hidden // max(1, heads)),
        vocab=int(_get(config, "vocab_size", default=0)),
        max_positions=_get(config, "max_position_embeddings", "n_positions"),
        params=params,
        embedding_params=embedding_params,
        layer_params=layer_params,
        head_params=head_params,
        linears=linears,
        gated_mlp="gate_proj" in names or "w1" in names and "w3" in names,
        attention_dropout=float(
            _get(
                config, "attention_probs_dropout_prob", "attention_dropout", "attn_pdrop", default=0
            )
            or 0
        ),
        lm_vocab=int(_get(config, "vocab_size", default=0)) if lm else 0,
    )


DECODER_TYPES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi", "phi3", "gpt2")
DECODER_TYPES += ("gpt_neox", "falcon", "opt", "bloom", "mixtral", "olmo", "smollm3", "granite")


def _is_decoder(config) -> bool:
    return config.model_type in DECODER_TYPES or any(
        a.endswith("ForCausalLM") for a in (getattr(config, "architectures", None) or [])
    )


def _find_blocks(model, n_layers: int) -> list:
    """The transformer blocks: the largest ModuleList of n_layers entries (encoder and
    decoder stacks of a seq2seq model, both)."""
    from torch import nn

    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) > 0]
    exact = [m for m in lists if len(m) == n_layers]
    if exact:
        # seq2seq: encoder and decoder stacks are two lists of n_layers each
        return [blk for lst in exact for blk in lst]
    return list(max(lists, key=len)) if lists else []


def model_shape(path: str | Path, task: str, num_labels: int = 2, gguf_file=None) -> ModelShape:
    """The shape of the model in `path` (a HF folder, or the cache folder of a .gguf)."""
    return shape_from_config(read_config(path, gguf_file), task, num_labels)
