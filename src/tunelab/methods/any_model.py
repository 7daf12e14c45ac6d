"""Load any model a user names for inference, not only the ones tunelab trained.

A tunelab run or model folder carries its task and labels in tunelab.json and loads through
`load_trained`. A base model (packaged alias, .gguf, hub id, plain HF folder) has none: its task
is the head its architecture declares (`...ForSequenceClassification` -> classification), and
it loads as it is. `tunelab eval --compare`, `tunelab explain`, `tunelab generate` and
`tunelab serve` all take both kinds through here.
"""

from __future__ import annotations

from pathlib import Path

from tunelab.config.model_meta import ModelMeta, model_meta
from tunelab.data.labels import LabelSpace
from tunelab.errors import TunelabError
from tunelab.methods.loading import (
    META_FILE,
    TrainedModel,
    auto_class,
    load_trained,
    read_meta,
    resolve_model_dir,
)
from tunelab.models.loading import (
    hub_errors,
    load_config,
    load_kwargs,
    load_tokenizer,
    quiet_transformers,
)
from tunelab.models.sources import ModelSource, resolve_model
from tunelab.tasks import all_tasks, get_task


def is_tunelab_folder(spec: str | Path) -> bool:
    """A run or model folder with tunelab.json (task, labels, columns)."""
    p = Path(spec)
    return p.exists() and (resolve_model_dir(p) / META_FILE).is_file()


def head_task(source: ModelSource) -> tuple[str | None, list[str]]:
    """(task of the head its config declares or None, the architecture names); no weights."""
    archs = list(getattr(load_config(source), "architectures", None) or [])
    for arch in archs:
        for task in all_tasks():  # each declares the architecture suffixes of its head
            if arch.endswith(task.architectures):
                return task.name, archs
    return None, archs


def task_of(spec: str | Path) -> tuple[str | None, list[str]]:
    """The task of a model spec: tunelab.json's for a tunelab folder, else its head's."""
    if Path(spec).exists() and (meta := read_meta(spec)):
        return meta.task, []
    return head_task(resolve_model(str(spec)))


def load_base_model(
    source: ModelSource, task: str, meta: ModelMeta | dict | None = None
) -> TrainedModel:
    """A plain model as it is, with the head of `task` (labels from its config for labelling
    tasks); `meta` adds reading settings (columns, packing, generation, max_length)."""
    tokenizer = load_tokenizer(source)
    with quiet_transformers(), hub_errors(source):
        model = auto_class(task).from_pretrained(
            source.path, use_safetensors=True, **load_kwargs(source)
        )
    model.eval()
    labels = None
    if get_task(task).labelled:
        id2label = model.config.id2label
        labels = LabelSpace(
            names=[id2label[i] for i in sorted(id2label)],
            multi_label=model.config.problem_type == "multi_label_classification",
        )
    own = meta.model_dump(exclude_unset=True) if isinstance(meta, ModelMeta) else meta or {}
    meta = model_meta({"task": task, "base_model": source.spec, **own})
    return TrainedModel(model, tokenizer, labels, meta.max_length_for(tokenizer), meta)


def load_causal_lm(model: str | Path):
    """(model, tokenizer) of a causal LM: a tunelab causal-lm run/model folder, or any
    loadable model (packaged alias, HF folder, .gguf, hub id). Anything else is refused:
    transformers would bolt a random LM head onto an encoder and generate noise."""
    if is_tunelab_folder(model):
        task = read_meta(model).task
        if get_task(task).head_kind != "causal":
            raise TunelabError(f"{model}: holds a '{task}' model; this needs a causal LM")
        trained = load_trained(model)
        return trained.model, trained.tokenizer
    source = resolve_model(str(model))
    task, archs = head_task(source)
    if archs and (task is None or get_task(task).head_kind != "causal"):
        raise TunelabError(f"{model}: a {', '.join(archs)} model, not a causal LM")
    causal = next(t.name for t in all_tasks() if t.head_kind == "causal")
    trained = load_base_model(source, causal)
    return trained.model, trained.tokenizer
