"""Benchmark: where the time of `tunelab export --format onnx` (and onnx,int8) goes.

The source is the packaged MiniLM encoder (`all-minilm-l6-v2`, 22.7M params) with a seeded
2-label classification head, laid out as a run folder (model/ + tunelab.json, config.yaml
naming examples/data/sst2), so the export checks it on 64 SST-2 test rows as it would a
trained run; or `--run RUN`, a real run. Export time does not depend on the weights' values.

Each variant runs twice in a fresh interpreter, as `tunelab export` would: once plain (the
wall time), once under cProfile (the breakdown: cumulative seconds of the phases, inflated
by the profiler's overhead, so read them as shares). Results: bench/results/export_onnx.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, report, run_child, start_run  # noqa: E402

EXAMPLE = """example:
  .venv/bin/python bench/export_onnx.py                       # onnx, then onnx,int8
  .venv/bin/python bench/export_onnx.py --variants onnx --no-save
"""
VARIANTS = {"onnx": "onnx", "onnx_int8": "onnx,int8"}

# (label, file suffix, function): cumulative seconds in the profile; indented = part of above
PHASES = [
    ("load the model (load_trained, each call)", "tunelab/methods/loading.py", "load_trained"),
    ("PyTorch reference logits", "tunelab/export/source.py", "reference"),
    ("torch.onnx.export", "torch/onnx/__init__.py", "export"),
    ("  dynamo: torch.export capture", "exporter/_capture_strategies.py", "__call__"),
    ("  dynamo: decompositions", "exporter/_core.py", "_prepare_exported_program_for_export"),
    ("  dynamo: FX -> ONNX", "exporter/_core.py", "_exported_program_to_onnx_program"),
    ("  dynamo: onnxscript optimizer", "exporter/_onnx_program.py", "optimize"),
    ("  dynamo: save", "exporter/_onnx_program.py", "save"),
    ("  TorchScript exporter", "torchscript_exporter/utils.py", "export"),
    (
        "onnxruntime: create sessions",
        "onnxruntime_inference_collection.py",
        "_create_inference_session",
    ),
    ("onnxruntime: run (checks, metric, latency)", "onnxruntime_inference_collection.py", "run"),
    ("int8: drop value_info (load + save)", "tunelab/export/int8.py", "_drop_value_info"),
    ("int8: quantize_dynamic", "quantization/quantize.py", "quantize_dynamic"),
    ("int8: latency (fp32 and int8)", "tunelab/export/int8.py", "latency"),
    ("tokenizer + config save", "transformers/tokenization_utils_base.py", "save_pretrained"),
    ("model card", "tunelab/export/card.py", "model_card"),
]


def make_run(folder: Path) -> Path:
    """The packaged MiniLM with a seeded 2-label head as a run folder (see the docstring)."""
    import torch
    import yaml
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tunelab.models.sources import resolve_model

    path = resolve_model("all-minilm-l6-v2").path
    names = ["negative", "positive"]
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        path,
        num_labels=2,
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
    )
    run = folder / "minilm-sst2"
    model.save_pretrained(run / "model")
    AutoTokenizer.from_pretrained(path).save_pretrained(run / "model")
    meta = {
        "task": "classification",
        "labels": {"names": names, "multi_label": False, "values": None},
        "max_length": 128,
        "base_model": "all-minilm-l6-v2",
        "method": "full",
        "merged": True,
    }
    (run / "model" / "tunelab.json").write_text(json.dumps(meta))
    cfg = yaml.safe_load((REPO / "examples" / "sst2.yaml").read_text())
    cfg["output"] = str(run)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    return run


def phases(stats) -> dict[str, float]:
    out = {}
    for label, suffix, name in PHASES:
        total = sum(
            row[3]  # cumulative time
            for (file, _, func), row in stats.stats.items()
            if func == name and file.endswith(suffix)
        )
        if total:
            out[label] = round(total, 2)
    return out


def child(variant: str, run: str, out: str, profile: bool) -> None:
    start = time.perf_counter()
    from tunelab.export import export_run

    def go():
        return export_run(run, VARIANTS[variant], output=out, overwrite=True)

    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        records = prof.runcall(go)
        row = {"phases": phases(pstats.Stats(prof))}
    else:
        records = go()
        row = {}
    row["seconds_in_process"] = round(time.perf_counter() - start, 2)
    row["checks"] = {
        fmt: {k: r["check"].get(k) for k in ("max_abs_diff", "argmax_agreement", "n")}
        for fmt, r in records.items()
    }
    print(json.dumps({"variant": f"{variant}{'-profiled' if profile else ''}", **row}))


def table(results: list[dict]) -> str:
    lines = []
    for r in results:
        if r["variant"].endswith("-profiled"):
            continue
        prof = next(p for p in results if p["variant"] == r["variant"] + "-profiled")
        fmts = VARIANTS[r["variant"]]
        checks = "; ".join(
            f"{f}: max |diff| {c['max_abs_diff']:.2g}, argmax agreement {c['argmax_agreement']:.3f}"
            for f, c in r["checks"].items()
        )
        lines += [
            f"### `tunelab export --format {fmts}`: {r['wall_seconds']:.1f} s wall",
            "",
            f"Checks: {checks}. Profiled run: {prof['seconds_in_process']:.1f} s in process.",
            "",
            "| phase (profiled, cumulative) | s |",
            "| --- | ---: |",
        ]
        lines += [f"| {k} | {v:.2f} |" for k, v in prof["phases"].items()]
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, epilog=EXAMPLE,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--run", help="a run folder to export (default: packaged MiniLM, see above)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--label", default="", help="a note for the results heading (before/after)")
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.chdir(REPO)  # the run's config names its data files relative to the repo
    if args.child:
        child(args.child, args.run, args.out, args.profile)
        return 0
    names, run = start_run("export_onnx.py", args.variants, tuple(VARIANTS), ("torch", "onnx", "onnxruntime", "onnxscript", "transformers"))  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="tunelab-bench-onnx-") as tmp:
        work = Path(tmp)
        source = args.run or str(make_run(work))
        run["results"] = []
        for name in names:
            for profile in (False, True):
                tag = f"{name}{'-profiled' if profile else ''}"
                cmd = [sys.executable, __file__, "--child", name, "--run", source]
                cmd += ["--out", str(work / tag)] + (["--profile"] if profile else [])
                row = run_child(tag, cmd, work, lambda r: f"{r['seconds_in_process']} s in process")
                run["results"].append(row)
    if any("error" in r for r in run["results"]):
        return report("export_onnx", "ONNX export time", "failed", run, True)
    head = (
        f"## {run['date']} · {run['machine']['cpu']}, {run['machine']['cores']} cores"
        f"{' · ' + args.label if args.label else ''}\n\nCommand: `{run['command']}`\n\n"
    )
    return report(
        "export_onnx", "ONNX export time", head + table(run["results"]), run, args.no_save
    )


if __name__ == "__main__":
    sys.exit(main())
