"""Load a model that tunelab saved (or any HF classification folder) for inference.

A tunelab model folder holds `tunelab.json` (task, labels, max length, base model). A LoRA
folder saved without merging holds the adapter only; its base is loaded and the adapter
applied with peft.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tunelab.config.model_meta import (
    META_FILE,
    ModelMeta,
    has_model_meta,
    model_meta,
    read_model_meta,
    write_model_meta,
)
from tunelab.data.labels import LabelSpace
from tunelab.errors import ModelSourceError
from tunelab.models.loading import load_config, load_tokenizer, quiet_transformers
from tunelab.models.sources import ModelSource, resolve_model
from tunelab.tasks import get_task


@dataclass
class TrainedModel:
    model: object
    tokenizer: object
    labels: LabelSpace | None  # None for tasks without labels (mlm)
    max_length: int
    meta: ModelMeta  # a dict of tunelab.json's shape is read into one

    def __post_init__(self) -> None:
        self.meta = model_meta(self.meta)

    @property
    def task(self) -> str:
        return self.meta.task


def auto_class(task: str):
    """The transformers Auto class whose head fits `task` (the Task's `auto_model`)."""
    import transformers

    return getattr(transformers, get_task(task).auto_model)


def write_meta(model_dir: Path, meta: ModelMeta | dict) -> None:
    """model_dir/tunelab.json (atomically, validated, with its schema_version)."""
    write_model_meta(model_dir, meta)


def resolve_model_dir(path: str | Path) -> Path:
    """Accept a run dir (uses its `model/`) or a model dir."""
    path = Path(path)
    if (path / "model").is_dir() and not (path / "config.json").exists():
        path = path / "model"
    if not path.exists():
        raise ModelSourceError(f"model path does not exist: {path}")
    if (path / "multitask.json").is_file():  # procedure multitask: one model folder per task
        tasks = sorted(json.loads((path / "multitask.json").read_text())["tasks"])
        raise ModelSourceError(
            f"{path} holds one model per task; pick one: " + ", ".join(str(path / t) for t in tasks)
        )
    return path


def read_meta(path: str | Path) -> ModelMeta | None:
    """The tunelab.json of a model or run folder (None for a plain HF folder); loads no
    weights. A broken or newer file is an OutputFileError naming the file and field."""
    folder = resolve_model_dir(path)
    return read_model_meta(folder) if has_model_meta(folder) else None


def load_trained(path: str | Path) -> TrainedModel:
    """The model, tokenizer and label space for inference, in eval mode."""
    model_dir = resolve_model_dir(path)
    source = resolve_model(str(model_dir))
    meta = read_meta(model_dir) or ModelMeta()
    if source.is_adapter:
        model, tokenizer, labels = _load_adapter(model_dir, meta)
    else:
        model, tokenizer, labels = _load_plain(source, meta)
    model.eval()
    max_length = meta.max_length_for(tokenizer)
    return TrainedModel(model, tokenizer, labels, max_length, meta)


def _labels_from_config(config, task: str) -> LabelSpace | None:
    if not get_task(task).labelled:
        return None
    names = [config.id2label[i] for i in sorted(config.id2label)]
    return LabelSpace(names=names, multi_label=config.problem_type == "multi_label_classification")


def _load_plain(source: ModelSource, meta: ModelMeta):
    task = meta.task
    tokenizer = load_tokenizer(source)
    with quiet_transformers():
        model = auto_class(task).from_pretrained(source.path, use_safetensors=True)
    labels = (
        LabelSpace.from_dict(meta.labels)
        if meta.labels
        else _labels_from_config(model.config, task)
    )
    return model, tokenizer, labels


def _load_adapter(model_dir: Path, meta: ModelMeta):
    """Base model with the task's head (labels from tunelab.json), then the trained update on
    top: a peft adapter (lora, dora, ia3, prefix, prompt) or tunelab's bottleneck adapters."""
    from tunelab.methods import adapter as bottleneck

    task = meta.task
    if get_task(task).labelled and not meta.labels:
        raise ModelSourceError(
            f"{model_dir}: adapter folder without {META_FILE}; cannot tell its labels"
        )
    labels = LabelSpace.from_dict(meta.labels) if meta.labels else None
    is_peft = (model_dir / "adapter_config.json").is_file()
    if is_peft:
        config = json.loads((model_dir / "adapter_config.json").read_text())
        base_spec = meta.base_model or config["base_model_name_or_path"]
    else:
        base_spec = meta.base_model
    if not base_spec:
        raise ModelSourceError(f"{model_dir}: {META_FILE} names no base_model for the adapter")
    base = resolve_model(base_spec)
    tokenizer = load_tokenizer(ModelSource(str(model_dir), "local", str(model_dir)))
    with quiet_transformers():
        base_model = _load_base(base, task, labels, tokenizer)
        if getattr(base_model.config, "pad_token_id", None) is None:
            base_model.config.pad_token_id = tokenizer.pad_token_id
        if not is_peft:
            return bottleneck.load_into(base_model, model_dir), tokenizer, labels
        from peft import PeftModel

        model = PeftModel.from_pretrained(base_model, str(model_dir))
    return model, tokenizer, labels


def _load_base(base: ModelSource, task: str, labels: LabelSpace | None, tokenizer):
    """The pretrained base an adapter was trained on, with a head of the right shape."""
    head_kind = get_task(task).head_kind
    head = {}
    if labels is not None:
        head = {
            "num_labels": labels.num_labels,
            "id2label": dict(enumerate(labels.names)),
            "label2id": {n: i for i, n in enumerate(labels.names)},
        }
        if head_kind == "sequence":  # one or several labels per text
            head["problem_type"] = (
                "multi_label_classification"
                if labels.multi_label
                else "single_label_classification"
            )
    if head_kind == "encoder-decoder" and not getattr(
        load_config(base), "is_encoder_decoder", False
    ):
        from tunelab.models.encoder_decoder import warm_start  # the base was an encoder

        return warm_start(base, tokenizer)
    return auto_class(task).from_pretrained(
        base.path,
        use_safetensors=True,
        trust_remote_code=False,
        ignore_mismatched_sizes=True,
        **head,
    )
