"""Every config key, generated from the schema: for `tunelab train --help`, the "unknown key"
error's suggestion, and anything else that must not keep a hand-written list.

`config_keys()` walks RunConfig through nested sections, lists (`procedure.tasks.<i>.name`),
mappings (`search.space.<key>.low`) and discriminated unions: a union member's keys carry the
condition that selects it (`method.r` with `when="method.name: lora"`, again for dora and
qlora). `locate(loc)` walks a pydantic error location the same way.
"""

from __future__ import annotations

import re
import textwrap
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

LIST_ITEM, MAP_KEY = "<i>", "<key>"


@dataclass(frozen=True)
class ConfigKey:
    key: str  # dotted; LIST_ITEM for a list entry, MAP_KEY for a mapping's key
    type: str
    default: str  # repr of the default, "required", or "" for a section with defaults
    description: str = ""
    when: str = ""  # the union member this key belongs to: "method.name: lora"
    section: bool = False  # a section (its keys follow), not a value
    choices: tuple[str, ...] = field(default=())  # a union's discriminator: its tags

    @property
    def name(self) -> str:
        return self.key.rsplit(".", 1)[-1]

    @property
    def parent(self) -> str:
        return self.key.rpartition(".")[0]


def type_name(annotation: Any) -> str:
    """`int | None`, `Literal['a', 'b']`: an annotation as a person reads it."""
    text = str(annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")
    text = re.sub(r"Annotated\[(.*), FieldInfo\(.*?\)\]", r"\1", text)  # search.space
    return re.sub(r"tunelab\.config\.\w+\.", "", text)


def _strip(annotation: Any) -> Any:
    """`Annotated[X, ...]` -> X; `X | None` -> X."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _strip(args[0])
    return annotation


def section_models(annotation: Any) -> list[type[BaseModel]]:
    """The config sections an annotation holds: `X`, `X | None`, or a union of sections."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) is typing.Annotated:
        return section_models(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(annotation) for m in section_models(a)]
    return []


def tag_of(model: type[BaseModel]) -> tuple[str, str] | None:
    """(discriminator, value) of a union member: ("name", "lora"), ("type", "float")."""
    for key in ("name", "type"):
        f = model.model_fields.get(key)
        if f is not None and typing.get_origin(f.annotation) is typing.Literal:
            args = typing.get_args(f.annotation)
            if len(args) == 1:
                return key, str(args[0])
    return None


def default_text(f) -> str:
    if f.is_required():
        return "required"
    if f.default_factory is not None:
        return repr(f.default_factory())
    return repr(f.default)


def _and(a: str, b: str) -> str:
    return f"{a}, {b}" if a and b else a or b


def _walk(model: type[BaseModel], prefix: str, when: str, skip: str = "") -> list[ConfigKey]:
    out: list[ConfigKey] = []
    for name, f in model.model_fields.items():
        if name == skip:
            continue
        path, ann = f"{prefix}{name}", f.annotation
        inner = _inner(ann, path, when, f)
        if inner and section_models(ann):
            default = "required" if f.is_required() else ("None" if f.default is None else "")
            out.append(ConfigKey(path, type_name(ann), default, f.description or "", when, True))
        else:
            out.append(ConfigKey(path, type_name(ann), default_text(f), f.description or "", when))
        out += inner
    return out


def _inner(annotation: Any, path: str, when: str, f=None) -> list[ConfigKey]:
    """The keys inside a value of this annotation at `path` (none for a plain value)."""
    ann = _strip(annotation)
    origin = typing.get_origin(ann)
    if origin is list:
        return _inner(typing.get_args(ann)[0], f"{path}.{LIST_ITEM}", when)
    if origin is dict:
        return _inner(typing.get_args(ann)[1], f"{path}.{MAP_KEY}", when)
    members = section_models(ann)
    if len(members) == 1:
        return _walk(members[0], f"{path}.", when)
    if len(members) < 2:
        return []
    disc = tag_of(members[0])[0]
    tags = tuple(tag_of(m)[1] for m in members)
    default = "required"
    if f is not None and not f.is_required():
        value = f.default_factory() if f.default_factory is not None else f.default
        default = repr(getattr(value, disc))
    out = [
        ConfigKey(
            f"{path}.{disc}",
            "Literal[" + ", ".join(repr(t) for t in tags) + "]",
            default,
            f"which one: {' | '.join(tags)}",
            when,
            choices=tags,
        )
    ]
    for member, tag in zip(members, tags, strict=True):
        out += _walk(member, f"{path}.", _and(when, f"{path}.{disc}: {tag}"), skip=disc)
    return out


_CACHE: dict[type, list[ConfigKey]] = {}
# the run config's class: schema.py registers it when it is defined (keys.py sits below it)
ROOT: list[type[BaseModel]] = []


def _root() -> type[BaseModel]:
    # importing any tunelab.config module first runs the package's __init__, which imports
    # schema.py: RunConfig is registered before anything can ask for it
    return ROOT[0]


def config_keys(model: type[BaseModel] | None = None) -> list[ConfigKey]:
    """Every key of a run config (or of `model`), in schema order: sections, their keys,
    each union member's keys (with `when`)."""
    if model is None:
        model = _root()
    if model not in _CACHE:
        _CACHE[model] = _walk(model, "", "")
    return list(_CACHE[model])


def format_keys(keys: list[ConfigKey] | None = None, width: int = 88) -> str:
    """The keys grouped by section, one line per section (members of a union that have the
    same keys share a line), for a `--help` epilog:

        data.{train, validation, test, ...}
        method.name: full | freeze | lora | ...
        method.{r, alpha, dropout, rslora, target_modules, merge}  (name: lora | dora | qlora)
    """
    keys = config_keys() if keys is None else keys
    order: list[str | tuple[str, str]] = []  # a union's choices line, or a (parent, when) group
    groups: dict[tuple[str, str], list[str]] = {}
    for k in keys:
        if k.choices:
            order.append(f"{k.key}: {' | '.join(k.choices)}")
        elif (k.parent, k.when) in groups:
            groups[k.parent, k.when].append(k.name)
        else:
            groups[k.parent, k.when] = [k.name]
            order.append((k.parent, k.when))
    whens: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (parent, when), names in groups.items():  # members with the same keys share a line
        whens.setdefault((parent, tuple(names)), []).append(when)
    lines, done = [], set()
    for item in order:
        if isinstance(item, str):
            lines.append(item)
            continue
        parent, names = item[0], tuple(groups[item])
        if (parent, names) in done:
            continue
        done.add((parent, names))
        text = f"{parent}.{{{', '.join(names)}}}" if parent else ", ".join(names)
        if item[1]:
            text += f"  ({_whens(whens[parent, names])})"
        lines.append(textwrap.fill(text, width, subsequent_indent="    ", break_on_hyphens=False))
    return "\n".join(lines)


def _whens(whens: list[str]) -> str:
    """["method.name: lora", "method.name: dora"] -> "method.name: lora | dora"."""
    heads = {w.rpartition(": ")[0] for w in whens}
    if len(heads) == 1 and len(whens) > 1:
        return f"{heads.pop()}: " + " | ".join(w.rpartition(": ")[2] for w in whens)
    return "; ".join(whens)


@dataclass
class Location:
    """Where a pydantic error location points in the schema."""

    shown: list[str]  # the dotted path as a person writes it (union tags left out)
    parent: type[BaseModel] | None = None  # the section holding the last key
    union: tuple[str, str, str, list[type[BaseModel]]] | None = None
    # (path of the union section, discriminator, chosen tag, members) when `parent` is the
    # chosen member of a union


def locate(loc: list[Any], root: Any = None) -> Location:
    """Walk `loc` (pydantic's error location, maybe behind a dotted prefix) from `root`
    (default RunConfig): drop union tags and pydantic's labels of plain-union branches,
    find the section that holds the last key."""
    if root is None:
        root = _root()
    out = Location([])
    node: Any = root
    tagged = None  # the union member the previous element picked
    for elem in loc:
        ann = _strip(node) if node is not None else None
        members = section_models(ann) if ann is not None else []
        if len(members) > 1:
            tags = {t[1]: m for m in members if (t := tag_of(m))}
            if elem in tags:  # the member pydantic picked: not part of the written path
                tagged = (".".join(out.shown), tag_of(tags[elem])[0], elem, members)
                node = tags[elem]
                continue
            # a path written without the tag (a prefix like procedure.tasks.0.data)
            holders = [m for m in members if isinstance(elem, str) and elem in m.model_fields]
            members = holders[:1]
        if len(members) == 1:
            cls = members[0]
            out.parent, out.union, tagged = cls, tagged, None
            out.shown.append(str(elem))
            f = cls.model_fields.get(elem) if isinstance(elem, str) else None
            node = f.annotation if f is not None else None
            continue
        tagged = None
        origin = typing.get_origin(ann)
        if origin is list or origin is dict:
            out.shown.append(str(elem))
            node = typing.get_args(ann)[0 if origin is list else 1]
        elif origin in (typing.Union, types.UnionType) and isinstance(elem, str):
            node = None  # pydantic names the branch of a plain union (train_layers.int)
        else:
            out.shown.append(str(elem))
            node = None
    if tagged is not None:  # the location ends at a member (its own check failed)
        out.union = tagged
    return out
