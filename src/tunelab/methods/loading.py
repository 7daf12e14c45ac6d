"""Load a model that tunelab saved (or any HF classification folder) for inference.

A tunelab model folder holds `tunelab.json` (task, labels, max length, base model). A LoRA
folder saved without merging holds the adapter only; its base is loaded and the adapter
applied with peft.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tunelab.data.labels import LabelSpace
from tunelab.errors import ModelSourceError
from tunelab.models.loading import load_sequence_classifier, load_tokenizer, quiet_transformers
from tunelab.models.sources import ModelSource, resolve_model

META_FILE = "tunelab.json"


@dataclass
class TrainedModel:
    model: object
    tokenizer: object
    labels: LabelSpace
    max_length: int
    meta: dict


def write_meta(model_dir: Path, meta: dict) -> None:
    (Path(model_dir) / META_FILE).write_text(json.dumps(meta, indent=2))


def resolve_model_dir(path: str | Path) -> Path:
    """Accept a run dir (uses its `model/`) or a model dir."""
    path = Path(path)
    if (path / "model").is_dir() and not (path / "config.json").exists():
        path = path / "model"
    if not path.exists():
        raise ModelSourceError(f"model path does not exist: {path}")
    return path


def load_trained(path: str | Path) -> TrainedModel:
    """The model, tokenizer and label space for inference, in eval mode."""
    model_dir = resolve_model_dir(path)
    source = resolve_model(str(model_dir))
    meta_path = model_dir / META_FILE
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if source.is_adapter:
        model, tokenizer, labels = _load_adapter(model_dir, meta)
    else:
        model, tokenizer, labels = _load_plain(source, meta)
    model.eval()
    max_length = int(
        meta.get("max_length") or min(getattr(tokenizer, "model_max_length", 512), 512)
    )
    return TrainedModel(model, tokenizer, labels, max_length, meta)


def _labels_from_config(config) -> LabelSpace:
    names = [config.id2label[i] for i in sorted(config.id2label)]
    return LabelSpace(names=names, multi_label=config.problem_type == "multi_label_classification")


def _load_plain(source: ModelSource, meta: dict):
    from transformers import AutoModelForSequenceClassification

    tokenizer = load_tokenizer(source)
    with quiet_transformers():
        model = AutoModelForSequenceClassification.from_pretrained(
            source.path, use_safetensors=True
        )
    labels = (
        LabelSpace.from_dict(meta["labels"])
        if "labels" in meta
        else _labels_from_config(model.config)
    )
    return model, tokenizer, labels


def _load_adapter(model_dir: Path, meta: dict):
    from peft import PeftModel

    if "labels" not in meta:
        raise ModelSourceError(
            f"{model_dir}: adapter folder without {META_FILE}; cannot tell its labels"
        )
    labels = LabelSpace.from_dict(meta["labels"])
    config = json.loads((model_dir / "adapter_config.json").read_text())
    base = resolve_model(meta.get("base_model") or config["base_model_name_or_path"])
    tokenizer = load_tokenizer(ModelSource(str(model_dir), "local", str(model_dir)))
    base_model = load_sequence_classifier(
        base, labels.names, multi_label=labels.multi_label, tokenizer=tokenizer
    )
    with quiet_transformers():
        model = PeftModel.from_pretrained(base_model, str(model_dir))
    return model, tokenizer, labels
