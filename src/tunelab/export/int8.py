"""int8 export for CPU and edge: the ONNX model with dynamic int8 quantization.

onnxruntime.quantization.quantize_dynamic stores MatMul/Gemm weights as int8 (activations
are quantized on the fly per batch). It was chosen over torch.ao dynamic quantization, which
torch 2.13 deprecates and whose saved state dict only loads back into a rebuilt, re-quantized
model: the int8 ONNX file loads with `onnxruntime.InferenceSession("model.onnx")` alone.

The export reports, against the fp32 ONNX model: file size, CPU latency (ms per example at
batch 1 and 32, median of repeats, intra-op threads stated) and the task metric on the
held-out rows (accuracy / macro F1, or entity F1 for token classification).
"""

from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path

import numpy as np

from tunelab.export.onnx import (
    ONNX_FILE,
    ort_runner,
    require_encoder,
    session,
    verified_onnx,
    write_folder,
)
from tunelab.export.source import Source
from tunelab.export.verify import (
    batched_logits,
    check,
    compare_logits,
    encode,
    heldout_inputs,
)


def export_int8(
    src: Source, out: Path, *, threads: int = 1, repeats: int = 5, metric_rows: int | None = 1000
) -> dict:
    """int8 model.onnx (+ tokenizer, config, tunelab.json) in `out`; figures of the check,
    size, latency and metric fp32 vs int8. The fp32 model is the verified one the onnx
    format uses too (exported and checked once per source)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    require_encoder(src, "int8")
    fp32, baseline = verified_onnx(src)
    write_folder(src, out, extra={"quantization": "dynamic int8 (onnxruntime)"})
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic's "consider pre-processing" advice
    try:
        quantize_dynamic(
            _without_value_info(fp32),
            out / ONNX_FILE,
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
    finally:
        root.setLevel(level)
    return measure(src, fp32, out / ONNX_FILE, threads, repeats, metric_rows, baseline)


def _without_value_info(path: Path):
    """The model without the exporter's intermediate shape annotations: onnxruntime's
    quantizer re-runs shape inference and trips over the symbolic ones the dynamo exporter
    writes. (In memory: the verified fp32 file stays as it was checked.)"""
    import onnx

    model = onnx.load(str(path))
    del model.graph.value_info[:]
    return model


def measure(
    src: Source,
    fp32: Path,
    int8: Path,
    threads: int,
    repeats: int,
    metric_rows: int | None,
    baseline: dict,
) -> dict:
    """Check int8 against fp32 ONNX (whose own check against the source is `baseline`),
    then size / latency / metric of fp32 vs int8 ONNX."""
    s32, s8 = session(fp32, threads), session(int8, threads)
    held = heldout_inputs(src.run_dir, src.meta, metric_rows)
    feeds = encode(src.trained.tokenizer, held, src.trained.max_length, src.input_names())
    mask = feeds["attention_mask"] if src.spec.head_kind == "token" else None
    logits32 = batched_logits(ort_runner(s32), feeds, by_length=True)
    logits8 = batched_logits(ort_runner(s8), feeds, by_length=True)
    figures = compare_logits(logits32, logits8, mask)
    figures["inputs"] = held.source
    figures = check("int8", figures)
    figures["fp32_onnx_check"] = dict(baseline)
    mb = {k: round(p.stat().st_size / 2**20, 3) for k, p in (("fp32", fp32), ("int8", int8))}
    figures["size_mb"] = {**mb, "ratio": round(mb["int8"] / mb["fp32"], 3)}
    figures["latency_ms_per_example"] = {
        f"batch_{b}": latency(s32, s8, feeds, b, repeats) for b in (1, 32)
    }
    figures["latency_ms_per_example"].update(
        threads=threads, repeats=repeats, runtime="onnxruntime CPU"
    )
    if held.gold is not None:
        figures["metric"] = {
            "rows": len(held),
            "fp32": task_metric(src, held, feeds, logits32),
            "int8": task_metric(src, held, feeds, logits8),
        }
    return figures


def _trim(feeds: dict[str, np.ndarray], rows: slice) -> dict[str, np.ndarray]:
    """Rows `rows`, cut to their longest real length (padding as a real batch would have)."""
    part = {k: v[rows] for k, v in feeds.items()}
    length = int(part["attention_mask"].sum(1).max())
    return {k: np.ascontiguousarray(v[:, :length]) for k, v in part.items()}


def latency(s32, s8, feeds: dict[str, np.ndarray], batch: int, repeats: int) -> dict:
    """Median ms per example over `repeats` passes through the same batches (one warm-up)."""
    n = len(feeds["input_ids"])
    count = min(n, 64 if batch == 1 else max(batch, min(n, 128)))
    batches = [_trim(feeds, slice(i, min(i + batch, count))) for i in range(0, count, batch)]
    result = {}
    for name, sess in (("fp32", s32), ("int8", s8)):
        run = ort_runner(sess)
        run(batches[0])  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for b in batches:
                run(b)
            times.append((time.perf_counter() - t0) * 1000 / count)
        # 4 significant digits, not 3 decimals: a tiny model on a fast machine must not read 0
        result[name] = float(f"{statistics.median(times):.4g}")
    result["speedup"] = round(result["fp32"] / result["int8"], 2) if result["int8"] else None
    result["examples"] = count
    return result


def task_metric(src: Source, held, feeds: dict[str, np.ndarray], logits: np.ndarray) -> dict:
    """Accuracy and macro F1 (classification) or entity P/R/F1 (token classification)."""
    labels = src.trained.labels
    if src.spec.head_kind == "token":  # entity P/R/F1 over each word's first sub-token
        from tunelab.evaluation.scoring.entities import entity_metrics
        from tunelab.tasks.token_classification import first_subtokens

        tok, gold, pred = src.trained.tokenizer, [], []
        for i, words in enumerate(held.words):
            enc = tok(
                words, is_split_into_words=True, truncation=True, max_length=src.trained.max_length
            )
            pos = first_subtokens(enc.word_ids())
            gold.append([labels.names[t] for t in held.gold[i][: len(pos)]])
            pred.append([labels.names[int(j)] for j in logits[i, pos].argmax(-1)])
        m = entity_metrics(gold, pred)
        return {k: round(m[k], 4) for k in ("precision", "recall", "f1", "accuracy")}
    from tunelab.metrics.classification import classification_metrics

    m = classification_metrics(np.asarray(held.gold), logits.argmax(-1), labels.names)
    return {k: round(m[k], 4) for k in ("accuracy", "f1_macro")}
