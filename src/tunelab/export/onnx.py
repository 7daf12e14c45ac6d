"""ONNX export of encoders with a sequence or token head (classification, token
classification).

Two exporters, tried in this order, and the check against the source model decides, never
the exporter's own word:

1. torch.onnx's TorchScript exporter on a copy of the model with eager attention. It takes
   ~1 s for the 22M-parameter MiniLM against ~8 s for the dynamo exporter, and its
   logits verify as closely (max |diff| 6e-8 vs 5e-8 on
   the SST-2 check rows; bench/results/export_onnx.md). An earlier transformers 5 release
   had the tracer mistrace SDPA's attention mask (logits off by ~1e-2 on padded rows; why
   this exporter was dropped before). With transformers 5.24 SDPA and eager both trace
   right here, but the copy gets eager attention (no kernel shortcuts that skip the mask)
   and the traced example has padded rows, so the mask is traced as data either way.
   torch >= 2.9 calls this exporter legacy: if it is gone, raises, or its model misses the
   check, the next one runs (export.json's check says which exporter made the file).
2. The dynamo exporter (torch.export + onnxscript), batch and sequence dims dynamic.

Either way opset 18. The verified fp32 file is made once per source (`verified_onnx`) and
shared by the onnx and int8 formats. The folder holds model.onnx, the tokenizer,
config.json (labels) and tunelab.json (task, labels, max length, onnx inputs); it runs in
onnxruntime without torch or tunelab.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import shutil
import warnings
from pathlib import Path

import numpy as np

from tunelab.export.source import Source
from tunelab.export.verify import ExportError, batched_logits, check, compare_logits
from tunelab.tasks import all_tasks

OPSET = 18
ONNX_FILE = "model.onnx"
ONNX_HEADS = ("sequence", "token")  # one logit row per input, or per input token
EXPORTERS = ("torchscript", "dynamo")


def require_encoder(src: Source, flag: str) -> None:
    """Refuse tasks the ONNX path does not cover, naming the formats that fit."""
    if src.spec.head_kind not in ONNX_HEADS:
        fits = "merged, adapter, gguf" if src.spec.head_kind == "causal" else "merged, adapter"
        raise ExportError(
            f"--format {flag} fits {' and '.join(onnx_tasks())} models; "
            f"for this {src.task} run use: {fits}"
        )


def onnx_tasks() -> list[str]:
    """The names of the tasks whose models export to ONNX (for messages)."""
    return [t.name for t in all_tasks() if t.head_kind in ONNX_HEADS]


def _logits_module(model):
    import torch

    class Logits(torch.nn.Module):
        """forward(input_ids, attention_mask[, token_type_ids]) -> logits (B, C) / (B, T, C)."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, **extra).logits

    return Logits(model.eval()).eval()


def example_inputs(feeds: dict[str, np.ndarray], pad_id: int = 0) -> dict[str, np.ndarray]:
    """The traced example: two rows of 3 to 16 tokens, the second ending in a padded position
    (mask 0), so neither exporter treats batch or sequence as constant, nor the attention
    mask as all ones. Never wider than the held-out rows, which fit the model's positions."""
    rows = {k: np.repeat(v[:2], 2, axis=0)[:2] for k, v in feeds.items()}  # (2, T)
    width = rows["input_ids"].shape[1]
    if width < 3:  # too short for symbolic dims: extend with real tokens
        fill = {"token_type_ids": 0}
        rows = {
            k: np.pad(v, ((0, 0), (0, 3 - width)), constant_values=fill.get(k, 1))
            for k, v in rows.items()
        }
    rows = {k: np.ascontiguousarray(v[:, :16]) for k, v in rows.items()}
    pad = {"input_ids": pad_id, "attention_mask": 0}
    for k, v in rows.items():
        v[1, -1] = pad.get(k, 0)
    return rows


@contextlib.contextmanager
def _quiet_exporter():
    """The exporters' chatter, silenced by message or category in this block only: the
    legacy-exporter notice, tracer warnings (the check catches a wrong trace), dynamo's
    progress lines on stdout and its "torchvision is not installed. Skipping ..." log lines
    (tunelab exports no vision ops)."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")

    def not_torchvision(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("torchvision is not installed")

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        import torch

        warnings.filterwarnings("ignore", message=r"You are using the legacy TorchScript")
        warnings.filterwarnings("ignore", message=r"The feature will be removed")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=r"Exporting aten::index operator")
        warnings.filterwarnings("ignore", message=r"# The axis name: .* will not be used")
        registration.addFilter(not_torchvision)
        try:
            yield
        finally:
            registration.removeFilter(not_torchvision)


def write_onnx(model, feeds: dict[str, np.ndarray], path: Path, exporter: str = "dynamo") -> None:
    """Export `model`'s logits for inputs named like `feeds` (N, T) to `path` with
    `exporter` ("torchscript": pass a model with eager attention; or "dynamo")."""
    import torch

    names = list(feeds)
    pad_id = getattr(model.config, "pad_token_id", None) or 0
    example = example_inputs(feeds, pad_id)
    args = tuple(torch.from_numpy(example[k]) for k in names)
    module = _logits_module(model)
    common = {"input_names": names, "output_names": ["logits"], "opset_version": OPSET}
    with _quiet_exporter():
        if exporter == "torchscript":
            with torch.inference_mode():
                per_token = module(*args).ndim == 3  # (B, T, C), else (B, C)
            axes = {k: {0: "batch", 1: "sequence"} for k in names}
            axes["logits"] = {0: "batch", 1: "sequence"} if per_token else {0: "batch"}
            torch.onnx.export(module, args, str(path), **common, dynamo=False, dynamic_axes=axes)
            return
        batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
        torch.onnx.export(
            module,
            args,
            str(path),
            **common,
            dynamo=True,
            dynamic_shapes={k: {0: batch, 1: seq} for k in names},
            external_data=False,
            verbose=False,
        )


def verified_onnx(src: Source) -> tuple[Path, dict]:
    """The source's fp32 ONNX file (in its scratch folder) and the check's figures against
    the source's logits, made once per source: the onnx and int8 formats share them. Each
    exporter in EXPORTERS is tried until one's model passes; the last failure is raised."""
    if "onnx" in src._cache:
        return src._cache["onnx"][:2]
    require_encoder(src, "onnx")
    feeds, failures = src.feeds(), {}
    for exporter in EXPORTERS:
        path = src.scratch() / f"{exporter}.onnx"
        model = src.plain_model()  # an ExportError here (prompt tuning) holds for both
        config = copy.deepcopy(model.config)  # as saved beside the file (attention untouched)
        try:
            if exporter == "torchscript":
                model.set_attn_implementation("eager")
            write_onnx(model, feeds, path, exporter)
            del model
            logits = batched_logits(ort_runner(session(path)), feeds)
            figures = compare_logits(src.reference(), logits, src.token_mask())
            figures["inputs"] = src.held.source
            figures = check("onnx", figures)
        except Exception as exc:  # this exporter cannot take the model, or mistraced it
            failures[exporter] = f"{type(exc).__name__}: {exc}"[:500]
            if exporter != EXPORTERS[-1]:
                continue
            msg = str(exc) if isinstance(exc, ExportError) else f"onnx export failed: {exc}"
            earlier = "; ".join(f"{k} exporter: {v}" for k, v in failures.items() if k != exporter)
            raise ExportError(msg + (f" (before it, {earlier})" if earlier else "")) from exc
        figures["exporter"] = exporter
        if failures:
            figures["exporters_failed"] = failures
        src._cache["onnx"] = (path, figures, config)
        return path, figures
    raise AssertionError("unreachable")


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
    path, figures = verified_onnx(src)
    write_folder(src, out)
    shutil.copyfile(path, out / ONNX_FILE)  # the very file that was checked
    return dict(figures)


def write_folder(src: Source, out: Path, onnx_file: str = ONNX_FILE, extra: dict | None = None):
    """What loads the ONNX model (tokenizer, config, tunelab.json) in `out`."""
    from tunelab.methods.loading import write_meta

    out.mkdir(parents=True, exist_ok=True)
    verified_onnx(src)
    src._cache["onnx"][2].save_pretrained(out)  # the config of the exported model
    src.trained.tokenizer.save_pretrained(out)
    onnx_meta = {"file": onnx_file, "inputs": list(src.feeds()), "outputs": ["logits"]}
    write_meta(
        out,
        src.meta.updated(merged=True, format="onnx", onnx={**onnx_meta, **(extra or {})}),
    )
