"""The models a server answers for, by the name requests give in their `model` field.

MODEL arguments are `name=path` or a bare reference (packaged alias, model folder, run
folder, export folder); a bare one is named after its folder (`runs/sst2` -> `sst2`). A model
registry reference (`champion@sst2`, `sst2@3`; references.py) is resolved through the
registry database to its version's folder and named after the registry name (`sst2`).

LoRA adapters of causal LMs that name the same base share one copy of it: the base loads
once, each adapter is attached with peft under its own name, and the engine runs rows of
different adapters in one batch (`adapter_names=`). A plain causal LM served beside them
that *is* their base joins too (its rows run with no adapter). Other models load on their
own through `methods.loading.load_trained` / `methods.any_model.load_causal_lm`.

Only safetensors weights load (a folder with only .bin/.pt pickles is refused: unpickling
runs code), and `trust_remote_code` stays off everywhere.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tunelab.config.model_meta import ModelMeta
from tunelab.errors import ModelSourceError, TunelabError
from tunelab.serving.references import Target, is_reference, registry_name
from tunelab.tasks import Task, all_tasks, get_task

# the route families this server has (Task.serve_kind): a task declaring another is refused
SERVE_KINDS = ("generate", "classify", "entities", "answer")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


@dataclass
class ServedModel:
    name: str
    task: str  # a task name whose Task has a serve_kind
    path: str
    model: object
    tokenizer: object
    trained: object | None = None  # TrainedModel for classify / entities
    group: str = ""  # models with one group share one engine (one base)
    adapter: str | None = None  # peft adapter name on a shared base; None: the base itself
    meta: ModelMeta = field(default_factory=ModelMeta)  # tunelab.json (defaults: none)
    created: int = field(default_factory=lambda: int(time.time()))
    reference: str | None = None  # the model registry reference it came from (champion@sst2)
    version: int | None = None  # the registered version it is (None: not from the registry)
    # folder_version of `path`, taken at load (a stat walk: kept off the event loop)
    fingerprint: str | None = None

    @property
    def spec(self) -> Task:
        return get_task(self.task)

    @property
    def kind(self) -> str:
        """The route family: "generate", "classify", "entities" (Task.serve_kind)."""
        return self.spec.serve_kind

    @property
    def decoder_only(self) -> bool:
        """A causal LM: served by the continuous-batching engine (chat and completions);
        another generating model (seq2seq) runs `model.generate` per batch of requests."""
        return self.spec.head_kind == "causal"

    @property
    def context_length(self) -> int:
        config = getattr(self.model, "config", None)
        return int(getattr(config, "max_position_embeddings", 0) or 2048)


def parse_spec(spec: str) -> tuple[str, str]:
    """`name=path` or a bare path/alias -> (name, reference); a bare registry reference is
    named after its registry name (`champion@sst2` -> `sst2`)."""
    if is_reference(spec):
        return registry_name(spec), spec
    if "=" in spec and not Path(spec).exists():
        name, ref = spec.split("=", 1)
        if not name or not ref:
            raise TunelabError(f"MODEL '{spec}': give name=path or a path")
        return name.strip(), ref.strip()
    path = Path(spec.rstrip("/"))
    name = path.parent.name if path.name in ("model", "adapter") and path.parent.name else path.name
    return (name[:-5] if name.endswith(".gguf") else name), spec


def check_safetensors(ref: str) -> None:
    """Refuse a local folder whose weights are only pickles (.bin/.pt/...)."""
    from tunelab.methods.loading import resolve_model_dir

    path = Path(ref)
    if not path.is_dir():
        return  # aliases, .gguf files and hub ids (hub loads pass use_safetensors=True)
    folder = resolve_model_dir(path)
    pickles = [p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES]
    if pickles and not any(folder.glob("*.safetensors")):
        raise ModelSourceError(
            f"{folder}: weights only as pickle files ({', '.join(sorted(pickles))}); "
            "tunelab serve loads safetensors only (convert with save_pretrained(safe_serialization=True))"
        )


def _task_of(ref: str) -> str:
    from tunelab.methods.any_model import task_of
    from tunelab.methods.loading import read_meta
    from tunelab.models.sources import resolve_model

    if not (Path(ref).exists() and read_meta(ref)) and resolve_model(ref).is_adapter:
        raise ModelSourceError(f"{ref}: adapter folder without tunelab.json; cannot tell its task")
    task, archs = task_of(ref)
    if task is None:
        raise ModelSourceError(
            f"{ref}: a {' '.join(archs) or 'headless'} model; serve needs a model of one of "
            f"these tasks: {', '.join(served_tasks())}"
        )
    return task


def served_tasks() -> list[str]:
    """The names of the tasks `tunelab serve` answers for (those with a serve_kind)."""
    return [t.name for t in all_tasks() if t.serve_kind in SERVE_KINDS]


def _shares_bases(task: str) -> bool:
    """Adapters of this task can share one loaded base (the decoding engine's mixed batches)."""
    return get_task(task).head_kind == "causal"


def _shareable_lora(ref: str) -> str | None:
    """The resolved base path of a causal-lm LoRA adapter folder that can share its base
    (plain LoRA: peft runs mixed-adapter batches for it, not for DoRA), else None."""
    from tunelab.methods.loading import read_meta, resolve_model_dir
    from tunelab.models.sources import resolve_model

    if not Path(ref).exists():
        return None
    folder = resolve_model_dir(ref)
    config_file = folder / "adapter_config.json"
    if not config_file.is_file():
        return None
    config = json.loads(config_file.read_text())
    meta = read_meta(folder)
    if (
        meta is None
        or config.get("peft_type") != "LORA"
        or config.get("use_dora")
        or not _shares_bases(meta.task)
    ):
        return None
    base = meta.base_model or config.get("base_model_name_or_path")
    return resolve_model(base).path if base else None


class Registry:
    """Loaded models by name. `load()` reads the weights (slow); /ready turns 200 after it.

    `db` is the model registry's database URL (default: $TUNELAB_DB, else tunelab.db here),
    read only when a MODEL is a registry reference."""

    def __init__(self, specs: list[str], db: str | None = None, shadows: list[str] = ()):
        self.specs = [parse_spec(s) for s in specs]
        self.db = db
        # served name -> the registry reference it follows; name -> where it points (check())
        self.references = {name: ref for name, ref in self.specs if is_reference(ref)}
        self.targets: dict[str, Target] = {}
        names = [n for n, _ in self.specs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise TunelabError(f"two models named {', '.join(dupes)}; name them: NAME=PATH")
        if not self.specs:
            raise TunelabError("give at least one MODEL to serve")
        self.models: dict[str, ServedModel] = {}
        # --shadow: served name -> what answers beside it, unseen (serving/shadow.py)
        self.shadow_specs = _shadow_specs(shadows, names)
        self.shadow_references = {n: r for n, r in self.shadow_specs.items() if is_reference(r)}
        self.shadow_targets: dict[str, Target] = {}
        self.shadows: dict[str, ServedModel] = {}

    def check(self) -> None:
        """Fast checks before any weights load: registry references resolve (RegistryError,
        StoreError), references resolve, weights are safetensors."""
        from tunelab.models.sources import resolve_model

        self._resolve_references()
        shadows = self.shadow_sources()
        for _, ref in [*self.sources(), *shadows.items()]:
            check_safetensors(ref)
            resolve_model(ref, convert_gguf=False)
        served = dict(self.sources())
        for name, ref in shadows.items():
            _check_shadow(name, ref, served[name])

    def _resolve_references(self) -> None:
        """Where each registry reference points, read once from the registry database."""
        pending = [(self.targets, n, r) for n, r in self.references.items()]
        pending += [(self.shadow_targets, n, r) for n, r in self.shadow_references.items()]
        pending = [(into, n, r) for into, n, r in pending if n not in into]
        if not pending:
            return
        from tunelab.serving.references import resolve
        from tunelab.store.db import database_url, open_db

        engine = open_db(database_url(self.db))
        try:
            for into, name, ref in pending:
                into[name] = resolve(engine, ref)
        finally:
            engine.dispose()

    def shadow_sources(self) -> dict[str, str]:
        """Served name -> the folder or reference its shadow loads from (after check())."""
        return {
            n: self.shadow_targets[n].path if n in self.shadow_references else r
            for n, r in self.shadow_specs.items()
        }

    def sources(self) -> list[tuple[str, str]]:
        """(name, what to load) per MODEL: a registry reference's version folder, else the
        reference as given (call check() first: it resolves the registry references)."""
        return [(n, self.targets[n].path if n in self.references else r) for n, r in self.specs]

    def load(self) -> None:
        from tunelab.models.sources import resolve_model

        self.check()
        specs = self.sources()
        # a followed registry model loads on its own (no shared LoRA base): swapping in its
        # next version (alias_watch.py) must not touch another served model's weights
        lora = {n: None if n in self.references else _shareable_lora(r) for n, r in specs}
        bases: dict[str, ServedModel] = {}  # resolved base path -> the served model holding it
        for name, ref in specs:  # plain models first: they may be the adapters' base
            if lora[name]:
                continue
            with _loading(name, ref):
                served = self._load_one(name, ref)
            self._mark(served)
            self.models[name] = served
            if served.decoder_only and name not in self.references:
                bases.setdefault(resolve_model(ref).path, served)
        for name, ref in specs:
            if lora[name]:
                with _loading(name, ref):
                    self.models[name] = self._attach(name, ref, lora[name], bases)
        self.models = {n: self.models[n] for n, _ in self.specs}  # the order given
        for members in self.groups().values():
            if len(members) == 1 and members[0].adapter:  # one adapter alone: merge it, faster
                only = members[0]
                only.model, only.adapter = only.model.merge_and_unload(), None
                only.model.eval()
        for name, ref in self.shadow_sources().items():  # on their own: swapped on their own
            with _loading(f"--shadow {name}", ref):
                shadow = self._load_one(name, ref)
            shadow.group = f"shadow:{name}"
            if name in self.shadow_targets:
                shadow.reference = self.shadow_references[name]
                shadow.version = self.shadow_targets[name].version
            self.shadows[name] = shadow

    def load_version(
        self, name: str, target: Target, reference: str, group: str | None = None
    ) -> ServedModel:
        """A registered version loaded to serve as `name` (in engine group `group`: a shadow's
        is not the name) beside the served models (nothing shared with them; the caller swaps
        it in). Runs in a background thread while the server keeps answering;
        ModelSourceError (one line) when it cannot be loaded."""
        with _loading(name, target.path):
            check_safetensors(target.path)
            served = self._load_one(name, target.path)
        served.reference, served.version = reference, target.version
        served.group = group or served.group
        return served

    def _mark(self, served: ServedModel) -> None:
        """Note on a served model the registry reference and version it came from."""
        if served.name in self.targets:
            served.reference = self.references[served.name]
            served.version = self.targets[served.name].version

    def _load_one(self, name: str, ref: str) -> ServedModel:
        from tunelab.serving.prediction_log import model_version

        served = self._load_weights(name, ref)
        served.fingerprint = model_version(ref)
        return served

    def _load_weights(self, name: str, ref: str) -> ServedModel:
        task = _task_of(ref)
        if get_task(task).serve_kind not in SERVE_KINDS:
            raise ModelSourceError(
                f"{ref}: a '{task}' model; serve answers for {', '.join(served_tasks())}"
            )
        if get_task(task).head_kind == "causal":
            from tunelab.methods.any_model import load_causal_lm

            model, tokenizer = load_causal_lm(ref)
            if hasattr(model, "peft_config"):  # an adapter that cannot share a base (dora, ia3...)
                if any(c.is_prompt_learning for c in model.peft_config.values()):
                    raise ModelSourceError(
                        f"{ref}: prefix/prompt tuning adds virtual tokens that serve's batched "
                        "decoding does not handle; use `tunelab generate` for this model"
                    )
                model = model.merge_and_unload()  # its weights folded in: plain, faster
            model.eval()
            return ServedModel(name, task, ref, model, tokenizer, group=name, meta=_meta(ref))
        from tunelab.methods.loading import load_trained

        trained = load_trained(ref)
        return ServedModel(
            name,
            task,
            ref,
            trained.model,
            trained.tokenizer,
            trained,
            group=name,
            meta=trained.meta,
        )

    def _attach(self, name: str, ref: str, base_path: str, bases: dict) -> ServedModel:
        """Put a LoRA adapter on its (shared) base model under the adapter name `name`."""
        from peft import PeftModel

        from tunelab.methods.any_model import load_causal_lm
        from tunelab.methods.loading import resolve_model_dir
        from tunelab.models.loading import load_tokenizer, quiet_transformers
        from tunelab.models.sources import ModelSource

        folder = resolve_model_dir(ref)
        meta_task = _meta(ref).task  # a task whose adapters share bases (_shareable_lora)
        holder = bases.get(base_path)
        if holder is None:  # the base is not served itself: load it once for the adapters
            model, _ = load_causal_lm(base_path)
            holder = ServedModel(f"base:{name}", meta_task, base_path, model, None, group=name)
            bases[base_path] = holder
        with quiet_transformers():
            if isinstance(holder.model, PeftModel):
                holder.model.load_adapter(str(folder), adapter_name=name)
            else:
                # a served plain base (holder) now runs wrapped, its rows with no adapter
                holder.model = PeftModel.from_pretrained(
                    holder.model, str(folder), adapter_name=name
                )
        holder.model.eval()
        tokenizer = load_tokenizer(ModelSource(str(folder), "local", str(folder)))
        return ServedModel(
            name,
            meta_task,
            ref,
            holder.model,
            tokenizer,
            group=holder.group,
            adapter=name,
            meta=_meta(ref),
        )

    def get(self, name: str) -> ServedModel | None:
        return self.models.get(name)

    def groups(self) -> dict[str, list[ServedModel]]:
        """Served models by shared engine; every model of a group holds the same module.
        The module is read after all adapters attached (a base is wrapped by the first)."""
        out: dict[str, list[ServedModel]] = {}
        for served in self.models.values():
            out.setdefault(served.group, []).append(served)
        for members in out.values():
            module = next((m.model for m in members if m.adapter), members[0].model)
            for m in members:
                m.model = module
        return out


def _shadow_specs(shadows, served: list[str]) -> dict[str, str]:
    """--shadow values (`challenger@sst2`, `sst2=runs/other`) -> {served name: reference}."""
    out: dict[str, str] = {}
    for spec in shadows:
        name, ref = parse_spec(spec)
        if name not in served:
            raise TunelabError(
                f"--shadow {spec}: it shadows '{name}', which is not served here (served: "
                f"{', '.join(served)}); name it: --shadow SERVED_NAME=PATH"
            )
        if name in out:
            raise TunelabError(f"--shadow: two shadows for '{name}'; give one per served model")
        out[name] = ref
    return out


def _check_shadow(name: str, ref: str, served_ref: str) -> None:
    """A shadow answers the same route as the model it shadows, on a route whose answers can
    be compared (classify, entities, answer)."""
    from tunelab.serving.shadow import SHADOW_KINDS

    task, served_task = _task_of(ref), _task_of(served_ref)
    kind, served_kind = get_task(task).serve_kind, get_task(served_task).serve_kind
    if served_kind not in SHADOW_KINDS:
        raise TunelabError(
            f"--shadow {name}: '{name}' is a {served_task} model; shadows run beside "
            f"{', '.join(SHADOW_KINDS)} models"
        )
    if kind != served_kind:
        raise TunelabError(
            f"--shadow {name}: {ref} is a {task} model and '{name}' a {served_task} model; "
            "a shadow must answer the same route"
        )


@contextmanager
def _loading(name: str, ref: str):
    """Turn a library's failure to load a model into one line naming the model."""
    try:
        yield
    except TunelabError:
        raise
    except Exception as exc:  # transformers/peft raise OSError, ValueError, KeyError...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelSourceError(f"{name}={ref}: could not load it: {first}") from exc


def _meta(ref: str) -> ModelMeta:
    from tunelab.methods.loading import read_meta

    return (read_meta(ref) if Path(ref).exists() else None) or ModelMeta()
