"""The model card (README.md) of an export: what the model is, what it was trained on and
how well it did, how the export was checked, how to load it, and what not to use it for.
Built from the run's config.yaml, results.json and tunelab.json."""

from __future__ import annotations

from pathlib import Path

from tunelab.export.source import Source

METRIC_KEYS = ("accuracy", "f1_macro", "f1", "precision", "recall", "loss", "perplexity", "bleu", "rougeL")  # fmt: skip

LOADING = {
    "merged": """```python
from transformers import pipeline
clf = pipeline("{pipeline}", model="{dir}")
```
or `tunelab predict {dir} --text "..."` / `tunelab serve {dir}`.""",
    "adapter": """```python
from tunelab.methods.loading import load_trained   # base model + adapter
model = load_trained("{dir}").model
```
A peft adapter (adapter_config.json) also loads with `peft.PeftModel.from_pretrained(base, "{dir}")`
on the base model named below.""",
    "onnx": """```python
import onnxruntime as ort
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained("{dir}")
sess = ort.InferenceSession("{dir}/model.onnx")
enc = tok(["some text"], return_tensors="np")
logits = sess.run(["logits"], {{k: enc[k] for k in {inputs}}})[0]
```
Labels are in config.json (`id2label`).""",
    "gguf": """```python
from transformers import AutoModelForCausalLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained("{dir}", gguf_file="model.gguf")
model = AutoModelForCausalLM.from_pretrained("{dir}", gguf_file="model.gguf")
```
or with llama.cpp: `llama-cli -m {dir}/model.gguf -p "..."`.""",
}
LOADING["int8"] = LOADING["onnx"] + " Weights are int8 (dynamic quantization), for CPUs."


def model_card(src: Source, fmt: str, out: Path, figures: dict) -> str:
    """README.md text for the export of `src` in `fmt` written to `out`."""
    meta, results = src.meta, src.results
    run = results.get("run", {})
    name = (src.run_dir or src.model_dir).name
    lines = [f"# {name}: {src.task} model ({fmt} export)", ""]
    lines += [
        f"- **Base model:** {meta.base_model or run.get('model', 'unknown')}",
        f"- **Task:** {src.task}",
        f"- **Method:** {src.method}" + _trainable(run),
    ]
    if meta.labels:
        lines.append(f"- **Labels:** {', '.join(meta.labels['names'])}")
    lines.append(f"- **Max input length:** {meta.max_length} tokens")
    lines.append(f"- **Exported from:** `{src.path}` (tunelab {meta.tunelab_version or '?'})")
    lines += ["", "## Training data", ""] + _data(src, run)
    lines += ["", "## Metrics", ""] + _metrics(results)
    lines += ["", "## Export check", ""] + _check(fmt, figures)
    lines += ["", "## How to load", ""]
    inputs = list(src.feeds()) if fmt in ("onnx", "int8") else []
    lines.append(
        LOADING[fmt].format(dir=out, pipeline=src.spec.pipeline_tag or src.task, inputs=inputs)
    )
    lines += ["", "## Intended use and limits", ""]
    lines += [
        f"- Intended for {src.spec.card_use or src.task}, on text like the training data.",
        "- It inherits the base model's biases and its training data's; the metrics above hold "
        "for data like the held-out split only. Check it on your own data before relying on it.",
        "- Not for decisions about people (credit, hiring, health, law) without human review.",
    ]
    if fmt in ("int8",) or figures.get("quant") in ("f16", "q8_0"):
        lines.append(
            "- Quantized weights: outputs differ slightly from the full-precision model (see the check)."
        )
    return "\n".join(lines) + "\n"


def _trainable(run: dict) -> str:
    t, n = run.get("trainable_params"), run.get("total_params")
    return f" ({t:,} of {n:,} parameters trained, {100 * t / n:.2f}%)" if t and n else ""


def _data(src: Source, run: dict) -> list[str]:
    from tunelab.export.verify import _run_config

    cfg = _run_config(src.run_dir)
    rows = run.get("rows", {})
    if cfg is None:
        return ["Not recorded (exported from a model folder without its run)."]
    out = []
    for split in ("train", "validation", "test"):
        path = getattr(cfg.data, split, None)
        if path or split in rows:
            count = f"{rows[split]:,} rows" if split in rows else "rows not recorded"
            out.append(f"- {split}: `{path or 'split from train'}` ({count})")
    return out


def _metrics(results: dict) -> list[str]:
    out = []
    for split in ("validation", "test"):
        scores = results.get(split)
        if not isinstance(scores, dict):
            continue
        parts = [
            f"{k} {scores[k]:.4f}" for k in METRIC_KEYS if isinstance(scores.get(k), (int, float))
        ]
        if parts:
            out.append(f"- {split} (n={scores.get('n', '?')}): " + ", ".join(parts))
    return out or ["No results.json in the run."]


def _check(fmt: str, f: dict) -> list[str]:
    """The verification figures in one or two lines (+ int8's size / latency / metric)."""
    out = [
        f"Compared with the source model on {f.get('n')} held-out values from {f.get('inputs')}: "
        f"max |logit diff| {f.get('max_abs_diff', 0):.3g}, argmax agreement "
        f"{f.get('argmax_agreement', 1):.3f}"
        + (
            f", greedy token agreement {f['greedy_agreement']:.3f}"
            if "greedy_agreement" in f
            else ""
        )
        + " (passed)."
    ]
    if fmt == "int8":
        s, lat = f["size_mb"], f["latency_ms_per_example"]
        out += ["", "| | fp32 ONNX | int8 ONNX |", "| --- | --- | --- |"]
        out.append(f"| size (MB) | {s['fp32']} | {s['int8']} |")
        for b in ("batch_1", "batch_32"):
            out.append(
                f"| latency {b.replace('_', ' ')} (ms/example) | {lat[b]['fp32']} | {lat[b]['int8']} |"
            )
        for name, v in (f.get("metric", {}).get("fp32") or {}).items():
            out.append(f"| {name} | {v} | {f['metric']['int8'][name]} |")
        out.append(f"\nCPU, {lat['threads']} thread(s), median of {lat['repeats']} repeats.")
    return out
