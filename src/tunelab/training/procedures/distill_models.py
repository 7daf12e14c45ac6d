"""The teacher and the student of knowledge distillation (`procedure: {name: distill}`).

`load_teacher` reads `procedure.teacher` (a tunelab run or model folder, a plain HF folder, a
hub id or packaged alias whose checkpoint has the task's head) and checks that it fits the
run: same task, same label names in the same order, same vocabulary as the run's tokenizer
(the teacher reads the very token ids the student is fed). `build_student` makes the smaller
student of `student_layers: k`: a copy of the teacher keeping its embeddings, its first k
transformer layers and its head.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from tunelab.errors import ConfigError, TunelabError
from tunelab.tasks import all_tasks, get_task

# head kinds (tasks/base.py) with a logit distribution per scored position to distil
HEADS = ("sequence", "token", "causal")
# config keys that hold the number of transformer layers, across architectures
LAYER_KEYS = ("num_hidden_layers", "n_layer", "n_layers", "num_layers")


@dataclass
class Teacher:
    model: object  # in eval mode, gradients off
    tokenizer: object
    labels: list[str] | None  # label names in id order (None for causal-lm)
    folder: Path | None  # where its weights live on disk (for the size report)


def _fail(message: str, value: object = None) -> ConfigError:
    return ConfigError("procedure.teacher", message, value, has_value=value is not None)


def load_teacher(spec: str, task: str) -> Teacher:
    """The teacher model for `task`, frozen and in eval mode (on the CPU; `setup` moves it)."""
    from tunelab.methods.loading import META_FILE, auto_class, load_trained, resolve_model_dir
    from tunelab.models.loading import load_kwargs, load_tokenizer, quiet_transformers
    from tunelab.models.sources import resolve_model

    info = get_task(task)
    if info.head_kind not in HEADS:
        names = ", ".join(t.name for t in all_tasks() if t.head_kind in HEADS)
        raise ConfigError("procedure.name", f"distill supports tasks {names}, not {task!r}")
    try:
        path = Path(spec)
        if path.exists() and (resolve_model_dir(path) / META_FILE).is_file():
            trained = load_trained(path)  # tunelab folder: task, labels, LoRA adapters
            if trained.task != task:
                raise _fail(f"{spec} was trained for task {trained.task!r}, this run is {task!r}")
            model, tokenizer, folder = trained.model, trained.tokenizer, resolve_model_dir(path)
            labels = trained.labels.names if trained.labels is not None else None
        else:
            source = resolve_model(str(resolve_model_dir(path)) if path.exists() else spec)
            tokenizer = load_tokenizer(source)
            arch = getattr(_config(source), "architectures", None) or []
            if arch and not any(a.endswith(info.architectures) for a in arch):
                raise _fail(
                    f"{spec} is a {arch[0]}, not a model with a {task} head "
                    f"(*{' or *'.join(info.architectures)}); fine-tune a teacher first and give "
                    "its run folder"
                )
            with quiet_transformers():
                model = auto_class(task).from_pretrained(
                    source.path, use_safetensors=True, **load_kwargs(source)
                )
            folder = Path(source.path) if Path(source.path).is_dir() else None
            labels = None
            if info.labelled:
                labels = [model.config.id2label[i] for i in sorted(model.config.id2label)]
    except ConfigError:
        raise
    except TunelabError as e:  # unresolvable / unloadable source: say which key it came from
        raise _fail(str(e)) from e
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return Teacher(model, tokenizer, labels, folder)


def _config(source):
    from tunelab.models.loading import load_config

    return load_config(source)


def check_teacher(teacher: Teacher, task: str, label_names: list[str] | None, tokenizer) -> None:
    """ConfigError naming procedure.teacher when the teacher cannot teach this run."""
    labelled = get_task(task).labelled
    if labelled and label_names is not None and teacher.labels != list(label_names):
        raise _fail(
            f"the teacher's labels {teacher.labels} differ from the data's {list(label_names)} "
            "(names and order must agree)"
        )
    if teacher.tokenizer is not None and tokenizer is not None:
        if teacher.tokenizer.get_vocab() != tokenizer.get_vocab():
            raise _fail(
                f"the teacher's vocabulary ({len(teacher.tokenizer)} tokens) differs from the "
                f"run's tokenizer ({len(tokenizer)} tokens, from model:); both must read the "
                "same token ids"
            )


def check_vocab(teacher_model, student_model) -> None:
    """causal-lm: the per-token distributions are over the same vocabulary."""
    t = teacher_model.get_output_embeddings().weight.shape[0]
    s = student_model.get_output_embeddings().weight.shape[0]
    if t != s:
        raise _fail(f"the teacher predicts over {t} tokens, the student over {s}; they must agree")


def layer_stack(model):
    """(dotted name, ModuleList) of the transformer layers: the ModuleList whose length is the
    config's layer count (bert.encoder.layer, model.layers, transformer.h, ...)."""
    import torch

    n = layer_count(model.config)
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n:
            return name, module
    raise TunelabError(f"cannot find the {n} transformer layers of {type(model).__name__}")


def layer_count(config) -> int:
    for key in LAYER_KEYS:
        if isinstance(getattr(config, key, None), int):
            return getattr(config, key)
    raise TunelabError(f"{type(config).__name__} names no layer count ({', '.join(LAYER_KEYS)})")


def build_student(teacher_model, k: int):
    """A copy of `teacher_model` with its embeddings, its first `k` layers and its head."""
    import torch

    model = teacher_model
    if hasattr(model, "merge_and_unload"):  # a LoRA teacher: fold the adapter in first
        model = copy.deepcopy(model).merge_and_unload()
    n = layer_count(model.config)
    if k > n:
        raise ConfigError(
            "procedure.student_layers", f"the teacher has only {n} layers", k, has_value=True
        )
    student = copy.deepcopy(model)
    name, layers = layer_stack(student)
    parent_name, _, attr = name.rpartition(".")
    parent = student.get_submodule(parent_name) if parent_name else student
    setattr(parent, attr, torch.nn.ModuleList(list(layers)[:k]))
    for key in LAYER_KEYS:
        if isinstance(getattr(student.config, key, None), int):
            setattr(student.config, key, k)
    if isinstance(getattr(student.config, "layer_types", None), list):  # newer decoder configs
        student.config.layer_types = student.config.layer_types[:k]
    student.train()
    for p in student.parameters():
        p.requires_grad_(True)
    return student


def load_student(cfg, data, tokenizer):
    """The run's model when `procedure.student_layers` is set: built from the teacher."""
    teacher = load_teacher(cfg.procedure.teacher, cfg.task)
    labels = data.labels.names if getattr(data, "labels", None) is not None else None
    check_teacher(teacher, cfg.task, labels, tokenizer)
    student = build_student(teacher.model, cfg.procedure.student_layers)
    if get_task(cfg.task).head_kind == "causal":
        student.config.use_cache = False
    return student
