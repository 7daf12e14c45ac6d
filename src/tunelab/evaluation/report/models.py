"""The models of one `tunelab eval`: load each, check they can be compared, name them.

MODEL and each --compare may be a run folder, a model folder, or a base model (packaged
alias, .gguf, hub id, plain HF folder). A tunelab folder carries its task and labels in
tunelab.json; a base model has none, so its task is read from its architecture, or, for a
compared base model, taken from the first model (a chat model compared with its own SFT run
is scored the same way, zero-shot). A plain encoder has no trained head: scoring it as a
classifier would score a random head, so it is refused with a pointer to what works.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tunelab.errors import ConfigError
from tunelab.methods.any_model import head_task, is_tunelab_folder, load_base_model
from tunelab.methods.loading import load_trained, resolve_model_dir
from tunelab.models.sources import resolve_model
from tunelab.tasks import get_task


@dataclass
class EvalModel:
    """One model of the comparison, loaded."""

    spec: str  # as the user gave it
    name: str  # display name
    trained: object  # methods.loading.TrainedModel
    run_dir: Path | None  # the run folder (holds metrics.jsonl), when the spec is one


def run_dir_of(spec: str) -> Path | None:
    """The run folder behind `spec` (a run folder, or its model/ folder) when it holds
    metrics.jsonl; None for anything else."""
    p = Path(spec)
    for cand in (p, p.parent if p.name == "model" else None):
        if cand is not None and (cand / "metrics.jsonl").is_file():
            return cand
    return None


def default_name(spec: str) -> str:
    """Display name: a run's folder name ("sst2" for runs/sst2 and runs/sst2/model), an alias
    as given, the last part of a path or hub id."""
    p = Path(spec.rstrip("/"))
    if p.name == "model" and p.parent.name:
        return p.parent.name
    if p.suffix == ".gguf":
        return p.stem
    return p.name or spec


def unique_names(names: list[str]) -> list[str]:
    """Names made distinct by suffixes: ["a", "a", "b"] -> ["a", "a-2", "b"]."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        candidate = name if seen[name] == 1 else f"{name}-{seen[name]}"
        while candidate in out:
            seen[name] += 1
            candidate = f"{name}-{seen[name]}"
        out.append(candidate)
    return out


def load_model(spec: str, like=None, flag: str = "MODEL"):
    """A TrainedModel of `spec` for evaluation. `like` (the first model's TrainedModel) gives
    a compared base model its task and reading settings; `flag` names the argument in errors."""
    p = Path(spec)
    if is_tunelab_folder(p):
        return load_trained(p)
    source = resolve_model(str(resolve_model_dir(p)) if p.exists() else spec)
    if source.is_adapter:
        return load_trained(p)  # adapter folder without tunelab.json: loading.py explains
    head, archs = head_task(source)
    task = like.task if like is not None else head
    shown = ", ".join(archs) or "no architecture"
    if task is None:
        raise ConfigError(
            flag,
            f"{spec} is a plain model ({shown}) with no task head; evaluate a trained model "
            "(a `tunelab train` run folder) and give base models as --compare",
        )
    if get_task(task).labelled and head != task:
        raise ConfigError(
            flag,
            f"{spec} is a plain encoder ({shown}) without a trained {task} head; its scores "
            "would be those of a random head. Compare with a trained run instead "
            "(e.g. --compare runs/<other-run>)",
        )
    if get_task(task).head_kind == "causal" and (
        head is None or get_task(head).head_kind != "causal"
    ):
        raise ConfigError(flag, f"{spec} ({shown}) is not a causal LM; cannot compare it")
    # a base model reads and scores the file as the first model does (columns, packing, ...)
    keep = ("columns", "packing", "generation", "max_length")
    meta = like.meta.model_dump(include=set(keep), exclude_unset=True) if like is not None else {}
    return load_base_model(source, task, meta)


def check_comparable(first: EvalModel, other: EvalModel, flag: str = "--compare") -> None:
    """Same task, and for label tasks the same label names in the same order (the per-row
    outputs are compared class by class)."""
    a, b = first.trained, other.trained
    if a.task != b.task:
        raise ConfigError(
            flag,
            f"{other.spec} is a {b.task} model but {first.spec} is {a.task}; compared models "
            "must share the task",
        )
    if get_task(a.task).labelled:
        na, nb = list(a.labels.names), list(b.labels.names)
        if na != nb or a.labels.multi_label != b.labels.multi_label:
            raise ConfigError(
                flag,
                f"{other.spec} has labels {nb} but {first.spec} has {na}; compared models must "
                "share the label names (in the same order)",
            )


def iter_models(specs: list[str], names: list[str] | None = None) -> Iterator[EvalModel]:
    """Load MODEL then each --compare, one at a time (the caller may drop a model's weights
    before the next loads), checking each against the first."""
    if names is not None and len(names) > len(specs):
        raise ConfigError("--name", f"{len(names)} names for {len(specs)} models")
    given = list(names or [])
    shown = unique_names(given + [default_name(s) for s in specs[len(given) :]])
    first: EvalModel | None = None
    for i, spec in enumerate(specs):
        flag = "MODEL" if i == 0 else "--compare"
        like = first.trained if first is not None else None
        m = EvalModel(spec, shown[i], load_model(spec, like, flag), run_dir_of(spec))
        if first is None:
            first = m
        else:
            check_comparable(first, m, flag)
        yield m
