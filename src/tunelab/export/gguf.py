"""GGUF export of Llama-family decoders (llama.cpp, ollama, LM Studio; transformers reads it
back with `gguf_file=`).

Laid out like the packaged SmolLM2 GGUF: `llama.*` hyperparameters, a byte-level BPE
tokenizer (`tokenizer.ggml.model = gpt2`: tokens, token types, merges, special ids, chat
template) and tensors under llama.cpp's names (gguf's tensor name map). llama.cpp stores the
q and k projections with each head's rotary halves interleaved (its convert script's
`permute`); transformers undoes that on load, so they are permuted here. Norms stay f32;
matrices are f32, f16 or q8_0 (blocks of 32 int8 values with one f16 scale).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tunelab.export.onnx import ONNX_HEADS
from tunelab.export.source import Source
from tunelab.export.verify import ExportError, check, compare_lm, lm_outputs

GGUF_FILE = "model.gguf"
QUANTS = ("f32", "f16", "q8_0")


def permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """HF (rotate-half) q/k rows -> llama.cpp's interleaved order: (out, in) -> (out, in)."""
    return (
        w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


def require_llama(src: Source) -> None:
    """Refuse models that are not Llama-architecture causal LMs, naming what fits."""
    if src.spec.head_kind != "causal":
        fits = (
            "merged, adapter, onnx, int8" if src.spec.head_kind in ONNX_HEADS else "merged, adapter"
        )
        raise ExportError(
            f"--format gguf fits Llama-family causal LMs; for this {src.task} run use: {fits}"
        )
    model_type = getattr(src.trained.model.config, "model_type", None)
    if model_type != "llama":
        raise ExportError(
            f"--format gguf writes Llama-architecture models; this one is '{model_type}'; use --format merged"
        )


def export_gguf(src: Source, out: Path, quant: str = "f16") -> dict:
    """model.gguf + tunelab.json in `out`; the figures of loading it back with transformers."""
    if quant not in QUANTS:
        raise ExportError(f"--quant {quant}: choose one of {', '.join(QUANTS)}")
    require_llama(src)
    from tunelab.methods.loading import write_meta

    out.mkdir(parents=True, exist_ok=True)
    model = src.plain_model()
    write_gguf(model, src.trained.tokenizer, out / GGUF_FILE, quant, name=_name(src))
    write_meta(
        out,
        src.meta.updated(merged=True, format="gguf", gguf={"file": GGUF_FILE, "quant": quant}),
    )
    return verify_gguf(src, out, quant)


def _name(src: Source) -> str:
    return f"{Path(str(src.meta.base_model or 'model')).name}-{src.method}"


def write_gguf(model, tokenizer, path: Path, quant: str, name: str = "model") -> None:
    """Write a HF LlamaForCausalLM and its tokenizer as one GGUF file."""
    import gguf

    cfg = model.config
    if getattr(cfg, "attention_bias", False) or getattr(cfg, "mlp_bias", False):
        raise ExportError("--format gguf: Llama models with projection biases are not supported")
    rope = getattr(cfg, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") != "default":
        raise ExportError(f"--format gguf: rope scaling '{rope.get('rope_type')}' is not supported")
    heads, kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(name)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_freq_base(float(rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0))))
    w.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
    w.add_vocab_size(cfg.vocab_size)
    w.add_rope_dimension_count(head_dim)
    file_type = {
        "f32": gguf.LlamaFileType.ALL_F32,
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    }
    w.add_file_type(file_type[quant])
    _write_tokenizer(w, tokenizer, cfg)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, cfg.num_hidden_layers)
    tied = bool(getattr(cfg, "tie_word_embeddings", False))
    for hf_name, tensor in model.state_dict().items():
        if tied and hf_name == "lm_head.weight":
            continue  # no output.weight: readers tie it to token_embd
        base, _, suffix = hf_name.rpartition(".")
        gguf_name = names.get_name(base)
        if gguf_name is None:
            raise ExportError(f"--format gguf: no GGUF name for tensor '{hf_name}'")
        arr = tensor.detach().float().cpu().numpy()
        if hf_name.endswith("q_proj.weight"):
            arr = permute(arr, heads)
        elif hf_name.endswith("k_proj.weight"):
            arr = permute(arr, kv_heads)
        _add_tensor(w, f"{gguf_name}.{suffix}", arr, quant, gguf)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def _add_tensor(w, name: str, arr: np.ndarray, quant: str, gguf) -> None:
    """Norms (1-D) in f32; matrices in the chosen type (q8_0 needs rows in blocks of 32)."""
    if arr.ndim == 1 or quant == "f32":
        w.add_tensor(name, arr.astype(np.float32))
    elif quant == "f16" or arr.shape[-1] % 32:
        w.add_tensor(name, arr.astype(np.float16))
    else:
        q = gguf.quants.quantize(arr.astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
        w.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)


def _write_tokenizer(w, tokenizer, cfg) -> None:
    """Byte-level BPE vocabulary, merges, token types and special ids, like SmolLM2's GGUF."""
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    model = state["model"]
    if model.get("type") != "BPE":
        raise ExportError(
            f"--format gguf: writes byte-level BPE tokenizers; this one is {model.get('type')}"
        )
    n = max(len(tokenizer), cfg.vocab_size)
    vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    tokens = [t if t is not None else f"[PAD{i}]" for i, t in enumerate(vocab)]
    tokens += [
        f"[PAD{i}]" for i in range(len(tokens), n)
    ]  # rows the embedding has beyond the vocab
    special = set(tokenizer.all_special_ids)
    added = {a["id"] for a in state.get("added_tokens", [])}
    types = [3 if i in special else 4 if i in added else 1 for i in range(n)]
    for i in range(len(tokenizer), n):
        types[i] = 5  # unused
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(_pre_name(tokenizer))
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    for key, token in (
        ("bos", tokenizer.bos_token_id),
        ("eos", tokenizer.eos_token_id),
        ("unk", tokenizer.unk_token_id),
        ("pad", tokenizer.pad_token_id),
    ):
        if token is not None:
            getattr(w, f"add_{key}_token_id" if key != "unk" else "add_unk_token_id")(int(token))
    w.add_add_bos_token(bool(getattr(tokenizer, "add_bos_token", False)))
    w.add_add_space_prefix(False)
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, str):
        w.add_chat_template(template)


def _pre_name(tokenizer) -> str:
    """llama.cpp's pre-tokenizer name: SmolLM2's vocabulary keeps 'smollm', others 'gpt2'."""
    names = tokenizer.convert_ids_to_tokens([0, 1, 2])
    return "smollm" if names[:3] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] else "gpt2"


def verify_gguf(src: Source, out: Path, quant: str) -> dict:
    """Load the GGUF with transformers (tokenizer too) and compare logits and greedy tokens."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab.models.loading import quiet_transformers

    with quiet_transformers():
        tok = AutoTokenizer.from_pretrained(out, gguf_file=GGUF_FILE)
        model = AutoModelForCausalLM.from_pretrained(out, gguf_file=GGUF_FILE, dtype=torch.float32)
    figures = compare_lm(src.lm_reference(), lm_outputs(model.eval(), tok, src.held.texts))
    figures.update(inputs=src.held.source, quant=quant, loaded_with="transformers gguf_file=")
    return check(f"gguf-{quant}", figures, greedy=True)
