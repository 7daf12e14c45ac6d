"""`tunelab export RUN --format ...`: argument parsing and printing; the work is in export/."""

from __future__ import annotations

import argparse
import json

EXAMPLES = """examples:
  tunelab export runs/sst2 --format merged                 # -> runs/sst2/export/merged
  tunelab export runs/sst2 --format onnx --output exports/sst2-onnx
  tunelab export runs/sst2 --format onnx,int8 --json       # -> runs/sst2/export/{onnx,int8}
  tunelab export runs/sst2 --format adapter --format merged --overwrite
  tunelab export runs/chat-sft --format gguf --quant q8_0  # llama.cpp / transformers gguf_file=

formats: merged (adapters folded in, safetensors), adapter (the update alone), onnx and int8
(classification / token-classification encoders; int8 = onnxruntime dynamic quantization,
with size, CPU latency and metric vs fp32), gguf (Llama-family causal LMs; --quant f32|f16|q8_0).
Every export is loaded back and compared with the run on held-out rows; a failed check
writes nothing. Each folder holds README.md (model card) and export.json (the check's figures)."""


def add_parser(sub) -> None:
    e = sub.add_parser(
        "export",
        help="export a trained run (merged, adapter, onnx, int8, gguf), verified",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("run", help="a run folder (or its model/ folder)")
    e.add_argument(
        "--format",
        action="append",
        required=True,
        help="merged | adapter | onnx | int8 | gguf (repeatable, or a comma list)",
    )
    e.add_argument(
        "--output",
        help="the export folder (several formats: one subfolder each; default RUN/export/FORMAT)",
    )
    e.add_argument(
        "--quant", default="f16", choices=["f32", "f16", "q8_0"], help="gguf weights (default f16)"
    )
    e.add_argument("--overwrite", action="store_true", help="replace an existing export folder")
    e.add_argument(
        "--rows", type=int, default=64, help="held-out rows for the logits check (default 64)"
    )
    e.add_argument(
        "--threads", type=int, default=1, help="CPU threads for int8 latency (default 1)"
    )
    e.add_argument("--json", action="store_true", help="print export.json of each format")


def main(args) -> int:
    from tunelab.export import export_run

    records = export_run(
        args.run,
        args.format,
        output=args.output,
        quant=args.quant,
        overwrite=args.overwrite,
        rows=args.rows,
        threads=args.threads,
    )
    if args.json:
        print(json.dumps(records, indent=2, default=str))
        return 0
    for fmt, rec in records.items():
        c = rec["check"]
        line = f"{fmt:<8s} {rec['output']}  {rec['weights_mb']:.1f} MB  check passed: "
        line += f"max|diff| {c['max_abs_diff']:.2g}, argmax agree {c['argmax_agreement']:.3f}"
        if "greedy_agreement" in c:
            line += f", greedy agree {c['greedy_agreement']:.3f}"
        print(line)
        if fmt == "int8":
            lat, size = c["latency_ms_per_example"], c["size_mb"]
            print(
                f"         size {size['fp32']} -> {size['int8']} MB; ms/example batch 1 "
                f"{lat['batch_1']['fp32']} -> {lat['batch_1']['int8']}, batch 32 "
                f"{lat['batch_32']['fp32']} -> {lat['batch_32']['int8']} ({lat['threads']} thread)"
            )
            for name, v in (c.get("metric", {}).get("fp32") or {}).items():
                print(f"         {name} {v} -> {c['metric']['int8'][name]}")
    return 0
