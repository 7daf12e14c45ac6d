"""`tunelab models`: the catalogue of models to pick from, ranked by fit for a task and this
machine's memory. Packaged models, local folders or .gguf files named with --path, and
well-known hub models from built-in metadata (the hub is never contacted for the list:
`hub_reachable` is a 3 s check, and offline the built-in figures are what there is)."""

from __future__ import annotations

from pathlib import Path

FAMILY_TASKS = {
    "encoder": ["classification", "token-classification", "extractive-qa", "mlm"],
    "decoder": ["causal-lm"],
    "encoder-decoder": ["seq2seq"],
}
# name, family, params, context, license, languages
HUB_MODELS = [
    ("bert-base-uncased", "encoder", 110e6, 512, "apache-2.0", "en"),
    ("distilbert-base-uncased", "encoder", 66e6, 512, "apache-2.0", "en"),
    ("roberta-base", "encoder", 125e6, 512, "mit", "en"),
    ("microsoft/deberta-v3-base", "encoder", 184e6, 512, "mit", "en"),
    ("answerdotai/ModernBERT-base", "encoder", 149e6, 8192, "apache-2.0", "en"),
    ("xlm-roberta-base", "encoder", 278e6, 512, "mit", "100 languages"),
    ("google-t5/t5-small", "encoder-decoder", 60e6, 512, "apache-2.0", "en, fr, de, ro"),
    ("facebook/bart-base", "encoder-decoder", 139e6, 1024, "apache-2.0", "en"),
    ("google/flan-t5-base", "encoder-decoder", 248e6, 512, "apache-2.0", "en + many"),
    ("HuggingFaceTB/SmolLM2-360M-Instruct", "decoder", 362e6, 8192, "apache-2.0", "en"),
    ("Qwen/Qwen2.5-0.5B-Instruct", "decoder", 494e6, 32768, "apache-2.0", "29 languages"),
    ("meta-llama/Llama-3.2-1B-Instruct", "decoder", 1.24e9, 131072, "llama3.2", "8 languages"),
    ("mistralai/Mistral-7B-Instruct-v0.3", "decoder", 7.25e9, 32768, "apache-2.0", "en"),
]
PACKAGED_META = {  # alias: (family, context, license, languages)
    "all-minilm-l6-v2": ("encoder", 512, "apache-2.0", "en"),
    "smollm2-135m-instruct": ("decoder", 8192, "apache-2.0", "en"),
}


def lora_train_mib(params: float) -> float:
    """A rough LoRA fine-tuning need for ranking: fp32 weights plus ~30% for activations
    at a modest batch (`tunelab plan` gives the real estimate for a config)."""
    return params * 4 * 1.3 / 2**20


def catalogue(
    task: str | None = None, paths: tuple[str, ...] = (), memory_mib: float | None = None
) -> list[dict]:
    """Every known model with its tasks, params, context, license, languages, source,
    whether it loads here now and whether LoRA training fits `memory_mib`; ranked."""
    from tunelab.models.catalog import list_models
    from tunelab.models.hub import hub_reachable, is_cached

    rows = []
    for r in list_models():
        family, ctx, lic, langs = PACKAGED_META.get(r["name"], ("encoder", None, None, None))
        rows.append(
            _row(r["name"], family, r["params"], ctx, lic, langs, "packaged", r["installed"])
        )
    for p in paths:
        rows.append(_local(Path(p)))
    online = hub_reachable()
    for name, family, params, ctx, lic, langs in HUB_MODELS:
        rows.append(
            _row(name, family, params, ctx, lic, langs, "hub", online or _cached(is_cached, name))
        )
    for r in rows:
        r["fits_memory"] = (
            None
            if memory_mib is None or not r["params"]
            else lora_train_mib(r["params"]) <= memory_mib
        )
    if task:
        rows = [r for r in rows if task in r["tasks"]]
    rows.sort(
        key=lambda r: (
            not r["loadable"],
            r["fits_memory"] is False,
            -(r["params"] or 0) if r["fits_memory"] else r["params"] or 0,
        )
    )
    return rows


def _cached(is_cached, name: str) -> bool:
    try:
        return bool(is_cached(name))
    except Exception:
        return False


def _row(name, family, params, ctx, lic, langs, source, loadable) -> dict:
    return {
        "name": name,
        "family": family,
        "tasks": FAMILY_TASKS.get(family, []),
        "params": int(params) if params else None,
        "context": ctx,
        "license": lic,
        "languages": langs,
        "source": source,
        "loadable": bool(loadable),
    }


def _local(path: Path) -> dict:
    """A local HF folder or .gguf: its config (no weights) says the family and size."""
    from tunelab.models.catalog import safetensors_params
    from tunelab.models.planner.shape import _is_decoder, read_config

    try:
        gguf = path if path.suffix == ".gguf" else None
        config = read_config(path.parent if gguf else path, gguf)
    except Exception as exc:  # noqa: BLE001 - a folder that is no model is listed as such
        row = _row(str(path), "unknown", None, None, None, None, "local", False)
        row["note"] = f"not loadable: {str(exc).splitlines()[0]}"
        return row
    family = (
        "encoder-decoder"
        if getattr(config, "is_encoder_decoder", False)
        else "decoder"
        if _is_decoder(config)
        else "encoder"
    )
    params = None if gguf else safetensors_params(path)
    return _row(
        str(path),
        family,
        params,
        getattr(config, "max_position_embeddings", None),
        None,
        None,
        "local",
        True,
    )
