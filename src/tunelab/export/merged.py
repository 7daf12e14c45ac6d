"""Merged and adapter-only exports, each checked by loading the written folder back.

- merged: the trained update folded into the base (lora, dora, ia3; full and freeze runs are
  plain already) -> model.safetensors + config.json + tokenizer + tunelab.json: a plain
  transformers folder (`pipeline(..., model=DIR)`), which `tunelab serve` also loads.
- adapter: the update alone (peft's adapter_config.json + adapter_model.safetensors, or
  tunelab's bottleneck adapters) + tokenizer + tunelab.json (which names the base model).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tunelab.export.onnx import ONNX_HEADS
from tunelab.export.source import Source
from tunelab.export.verify import (
    ExportError,
    batched_logits,
    check,
    compare_lm,
    compare_logits,
    lm_outputs,
    torch_runner,
)

SKIP_FILES = ("README.md",)  # peft's generated card: the export writes its own


def export_merged(src: Source, out: Path) -> dict:
    """Write the merged model to `out` and return the check's figures."""
    if src.method == "adapter":
        raise ExportError(
            "--format merged: bottleneck adapters sit behind a nonlinearity and cannot be "
            "folded into the base weights; --format adapter"
            + (" or onnx" if src.spec.head_kind in ONNX_HEADS else "")
            + " fits this run"
        )
    from tunelab.methods.loading import write_meta

    model = src.plain_model()  # refuses prefix/prompt runs
    model.save_pretrained(out, safe_serialization=True)
    src.trained.tokenizer.save_pretrained(out)
    write_meta(out, src.meta.updated(merged=True))
    return verify_folder(src, out, "merged")


def export_adapter(src: Source, out: Path) -> dict:
    """Copy the trained update alone to `out` and return the check's figures."""
    folder = src.adapter_dir
    if folder is None:
        raise ExportError(
            f"--format adapter: a '{src.method}' run trains the model's own weights and has no "
            "adapter; --format merged fits it (lora, dora, ia3, adapter, prefix and prompt "
            "runs have one)"
        )
    from tunelab.methods.loading import META_FILE, write_meta

    out.mkdir(parents=True, exist_ok=True)
    for f in folder.iterdir():
        if f.is_file() and f.name not in SKIP_FILES:
            shutil.copy2(f, out / f.name)
    if not (out / META_FILE).is_file():
        write_meta(out, src.meta.updated(merged=False))
    return verify_folder(src, out, "adapter")


def verify_folder(src: Source, out: Path, name: str) -> dict:
    """Load `out` as `tunelab predict` would and check it against the source."""
    from tunelab.methods.loading import load_trained

    exported = load_trained(out)
    return verify_torch(src, exported.model, exported.tokenizer, name)


def verify_torch(src: Source, model, tokenizer, name: str) -> dict:
    """Check a torch model: logits on the held-out inputs (causal LMs: and greedy tokens)."""
    if src.spec.head_kind == "causal":
        figures = compare_lm(src.lm_reference(), lm_outputs(model, tokenizer, src.held.texts))
        figures["inputs"] = src.held.source
        return check(name, figures, greedy=True)
    logits = batched_logits(torch_runner(model), src.feeds())
    figures = compare_logits(src.reference(), logits, src.token_mask())
    figures["inputs"] = src.held.source
    return check(name, figures)
