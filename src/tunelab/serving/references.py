"""Model registry references as served MODELs: `champion@sst2`, `sst2@3`, `NAME=champion@sst2`.

A MODEL that names a registered version (store/registry.py) is served from that version's
folder. It is named after the registry name (`champion@sst2` serves as `sst2`), so clients
keep the same `model` field when the alias moves. Only references with an `@` count: a bare
`sst2` stays a folder or packaged alias, as it always was (a path that exists wins too).

An alias reference (`champion@sst2`) is *followed*: serving/alias_watch.py polls it and swaps
in the version it points at. A version reference (`sst2@3`) is pinned and never moves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# a registry name or alias (store/aliases.py's rule: no `@`, no `/`)
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Target:
    """Where a reference points right now: the registered version and its folder."""

    name: str  # the registry name
    version: int
    path: str


def is_reference(ref: str) -> bool:
    """Whether a MODEL value is a registry reference: `A@B` with two registry-style parts,
    not an existing path (a folder named `a@b` is served as a folder)."""
    if ref.count("@") != 1 or Path(ref).exists():
        return False
    left, right = ref.split("@")
    return bool(_PART.match(left) and _PART.match(right))


def registry_name(ref: str) -> str:
    """The registered model name of a reference (`champion@sst2`, `sst2@3` -> `sst2`)."""
    from tunelab.store.registry import parse_ref

    return parse_ref(ref)[0]


def follows_alias(ref: str) -> bool:
    """An alias reference, which can move (`champion@sst2`); `sst2@3` is pinned."""
    from tunelab.store.registry import parse_ref

    which = parse_ref(ref)[1]
    return which is not None and not which.isdigit()


def resolve(engine, ref: str) -> Target:
    """The version `ref` points at in the registry behind `engine`. RegistryError (one line
    naming the model and what it has) for an unknown name, version or alias."""
    from tunelab.store.registry import get_version, parse_ref

    name, which = parse_ref(ref)
    found = get_version(engine, name, which)
    return Target(name=name, version=int(found["version"]), path=str(found["path"]))
