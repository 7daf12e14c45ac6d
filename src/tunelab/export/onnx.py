"""ONNX export of classification and token-classification encoders.

torch.onnx's dynamo exporter (torch.export + onnxscript) with batch and sequence dims
dynamic, opset 18. The TorchScript exporter mistraces transformers 5's SDPA attention mask
(logits off by ~1e-2 on padded rows), so it is not used. The folder holds model.onnx,
the tokenizer, config.json (labels) and tunelab.json (task, labels, max length, onnx inputs);
it runs in onnxruntime without torch or tunelab.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np

from tunelab.export.source import Source
from tunelab.export.verify import ExportError, batched_logits, check, compare_logits

OPSET = 18
ONNX_FILE = "model.onnx"
ONNX_TASKS = ("classification", "token-classification")


def require_encoder(src: Source, flag: str) -> None:
    """Refuse tasks the ONNX path does not cover, naming the formats that fit."""
    if src.task not in ONNX_TASKS:
        fits = "merged, adapter, gguf" if src.task == "causal-lm" else "merged, adapter"
        raise ExportError(
            f"--format {flag} fits classification and token-classification models; "
            f"for this {src.task} run use: {fits}"
        )


def write_onnx(model, feeds: dict[str, np.ndarray], path: Path) -> None:
    """Export `model`'s logits for inputs named like `feeds` (N, T) to `path`."""
    import torch

    names = list(feeds)

    class Logits(torch.nn.Module):
        """forward(input_ids, attention_mask[, token_type_ids]) -> logits (B, C) / (B, T, C)."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, **extra).logits

    # at least 2 rows and 3 tokens, so torch.export keeps both dims symbolic
    example = {k: np.repeat(v[:2], 2, axis=0)[:2] for k, v in feeds.items()}
    if example[names[0]].shape[1] < 3:
        example = {k: np.pad(v, ((0, 0), (0, 3)), constant_values=1) for k, v in example.items()}
    args = tuple(torch.from_numpy(example[k]) for k in names)
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
    dynamic = {k: {0: batch, 1: seq} for k in names}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Logits(model.eval()),
            args,
            str(path),
            input_names=names,
            output_names=["logits"],
            opset_version=OPSET,
            dynamo=True,
            dynamic_shapes=dynamic,
            external_data=False,
            verbose=False,
        )


def session(path: Path, threads: int = 1):
    """An onnxruntime CPU session with `threads` intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def ort_runner(sess):
    """feeds -> logits with an onnxruntime session."""
    return lambda feeds: sess.run(["logits"], feeds)[0]


def export_onnx(src: Source, out: Path) -> dict:
    """model.onnx + tokenizer + config + tunelab.json in `out`; the check's figures."""
    require_encoder(src, "onnx")
    write_folder(src, out)
    logits = batched_logits(ort_runner(session(out / ONNX_FILE)), src.feeds())
    figures = compare_logits(src.reference(), logits, src.token_mask())
    figures["inputs"] = src.held.source
    return check("onnx", figures)


def write_folder(src: Source, out: Path, onnx_file: str = ONNX_FILE, extra: dict | None = None):
    """The fp32 ONNX model and what loads it (tokenizer, config, tunelab.json) in `out`."""
    from tunelab.methods.loading import write_meta

    out.mkdir(parents=True, exist_ok=True)
    model = src.plain_model()
    write_onnx(model, src.feeds(), out / onnx_file)
    model.config.save_pretrained(out)
    src.trained.tokenizer.save_pretrained(out)
    onnx_meta = {"file": onnx_file, "inputs": list(src.feeds()), "outputs": ["logits"]}
    write_meta(
        out, {**src.meta, "merged": True, "format": "onnx", "onnx": {**onnx_meta, **(extra or {})}}
    )
