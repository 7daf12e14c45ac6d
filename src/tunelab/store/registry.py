"""The model registry: numbered versions of a model name, in the same database as the
prediction log, so that `tunelab serve champion@NAME`, `tunelab retrain` and the monitor all
agree on which model is which.

A version is a run or export folder plus what it recorded when it was added (lineage.py):
its config, data fingerprints, library versions, model fingerprint and eval results.
Versions are numbered 1, 2, ... per name and never change after that, except for their tags.
Aliases (champion, challenger, ...) point at one version of a name each; moving one
(aliases.py) is one transaction and is kept in a history that rollback walks back.

References, for `resolve`: `NAME@3` (version 3), `champion@NAME` (what the alias points at)
and `NAME` alone (its champion).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.store.aliases import (
    CHAMPION,
    RegistryError,
    aliases_of,
    check_name,
    history,
    lock_alias,
    move_alias,
    previous_holder,
    transaction,
)
from tunelab.store.tables import model_versions

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

__all__ = [
    "CHAMPION",
    "RegistryError",
    "add_version",
    "alias_history",
    "get_version",
    "list_versions",
    "names",
    "promote",
    "resolve",
    "rollback",
    "tag",
]

_TAG_KEY = re.compile(r"^[A-Za-z0-9_.:/-]{1,100}$")


def _row(r) -> dict[str, Any]:
    d = dict(r._mapping)
    d.pop("id", None)
    d["tags"] = d.get("tags") or {}
    return d


def _with_aliases(conn: Connection, rows: list[dict]) -> list[dict]:
    held = {}
    for name in {r["name"] for r in rows}:
        for alias, version in aliases_of(conn, name).items():
            held.setdefault((name, version), []).append(alias)
    for r in rows:
        r["aliases"] = sorted(held.get((r["name"], r["version"]), []))
    return rows


def names(engine: Engine) -> list[str]:
    """The registered model names, sorted."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        q = sa.select(model_versions.c.name).distinct().order_by(model_versions.c.name)
        return [r[0] for r in conn.execute(q)]


def _unknown_name(conn: Connection, name: str) -> RegistryError:
    import sqlalchemy as sa

    q = sa.select(model_versions.c.name).distinct().order_by(model_versions.c.name)
    known = [r[0] for r in conn.execute(q)]
    shown = ", ".join(known) if known else "none yet"
    return RegistryError(f"no model named '{name}' in the registry (registered: {shown})")


def _version_number(conn: Connection, name: str, version_or_alias: int | str | None) -> int:
    """The version number `version_or_alias` names (None: the champion, else the newest);
    RegistryError naming the name and what was asked for when there is none."""
    import sqlalchemy as sa

    c = model_versions.c
    numbers = [r[0] for r in conn.execute(sa.select(c.version).where(c.name == name))]
    if not numbers:
        raise _unknown_name(conn, name)
    held = aliases_of(conn, name)
    if version_or_alias is None:
        return held.get(CHAMPION, max(numbers))
    text = str(version_or_alias).strip()
    if text.isdigit():
        if int(text) not in numbers:
            raise RegistryError(
                f"{name}: no version {int(text)} (versions 1..{max(numbers)}; see "
                f"tunelab registry list {name})"
            )
        return int(text)
    if text not in held:
        shown = ", ".join(f"{a}={v}" for a, v in sorted(held.items())) or "none set"
        raise RegistryError(f"{name}: no alias '{text}' (aliases: {shown})")
    return held[text]


def _get(conn: Connection, name: str, version_or_alias: int | str | None) -> dict[str, Any]:
    import sqlalchemy as sa

    number = _version_number(conn, name, version_or_alias)
    c = model_versions.c
    row = conn.execute(sa.select(model_versions).where(c.name == name, c.version == number)).one()
    return _with_aliases(conn, [_row(row)])[0]


def get_version(
    engine: Engine, name: str, version_or_alias: int | str | None = None
) -> dict[str, Any]:
    """One version as a dict (name, version, path, kind, created, parent_version, config,
    lineage, results, tags, aliases). `version_or_alias`: a number, an alias, or None (the
    champion, else the newest version)."""
    with engine.connect() as conn:
        return _get(conn, name, version_or_alias)


def list_versions(engine: Engine, name: str | None = None) -> list[dict[str, Any]]:
    """Every version (of `name`, or of every name), by name then version number. An unknown
    `name` is a RegistryError, not an empty list: a typo should not read as "no versions"."""
    import sqlalchemy as sa

    c = model_versions.c
    q = sa.select(model_versions).order_by(c.name, c.version)
    if name is not None:
        q = q.where(c.name == name)
    with engine.connect() as conn:
        rows = [_row(r) for r in conn.execute(q)]
        if name is not None and not rows:
            raise _unknown_name(conn, name)
        return _with_aliases(conn, rows)


def _default_parent(conn: Connection, name: str, description: dict) -> int | None:
    """The champion's version when the new run was fine-tuned from the champion's model."""
    from tunelab.store.lineage import fine_tuned_from

    champion = aliases_of(conn, name).get(CHAMPION)
    if champion is None:
        return None
    path = _get(conn, name, champion)["path"]
    return champion if fine_tuned_from(description, path) else None


def add_version(
    engine: Engine,
    name: str,
    path: str | Path,
    alias: str | None = None,
    parent: int | None = None,
) -> dict[str, Any]:
    """Register the run or export folder at `path` as the next version of `name` and return
    it. `alias` points that alias at it in the same transaction; `parent` (a version of the
    same name) defaults to the champion when the run was fine-tuned from the champion's model.
    The folder is checked before anything is written (FolderError names the path)."""
    import sqlalchemy as sa

    from tunelab.store.lineage import describe

    check_name(name, "model name")
    if alias is not None:
        check_name(alias, "alias")
    description = describe(path)  # reads the folder: nothing written yet
    c = model_versions.c

    def work(conn: Connection) -> dict[str, Any]:
        newest = conn.execute(sa.select(sa.func.max(c.version)).where(c.name == name)).scalar()
        if parent is None:
            parent_version = _default_parent(conn, name, description) if newest else None
        else:
            parent_version = int(parent)
            found = conn.execute(
                sa.select(c.version).where(c.name == name, c.version == parent_version)
            ).first()
            if found is None:
                raise RegistryError(f"{name}: no version {parent_version} to be the parent")
        number = (newest or 0) + 1
        row = {
            "name": name,
            "version": number,
            "path": description["path"],
            "kind": description["kind"],
            "created": time.time(),
            "parent_version": parent_version,
            "config": description["config"],
            "lineage": description["lineage"],
            "results": description["results"],
            "tags": {},
        }
        # unique (name, version): a concurrent add of the same number fails here and retries
        conn.execute(model_versions.insert().values(**row))
        if alias is not None:
            move_alias(conn, name, alias, number, "add")
        return _get(conn, name, number)

    return transaction(engine, work)


def promote(engine: Engine, name: str, version: int | str, alias: str = CHAMPION) -> dict[str, Any]:
    """Point `alias` of `name` at `version` (a number, or another alias: `promote NAME
    challenger`), in one transaction. {name, alias, version, previous, changed}; promoting the
    version that already holds the alias changes nothing and is not recorded."""
    check_name(alias, "alias")

    def work(conn: Connection) -> dict[str, Any]:
        lock_alias(conn, name, alias)  # first: a concurrent move of this alias waits here
        number = _version_number(conn, name, version)
        previous = move_alias(conn, name, alias, number, "promote")
        return {
            "name": name,
            "alias": alias,
            "version": number,
            "previous": previous,
            "changed": previous != number,
        }

    return transaction(engine, work)


def rollback(engine: Engine, name: str, alias: str = CHAMPION) -> dict[str, Any]:
    """Point `alias` back at the version that held it before the current one (a second
    rollback goes one further back), in one transaction. {name, alias, version, previous};
    RegistryError when the alias is unset or has no earlier holder."""
    check_name(alias, "alias")

    def work(conn: Connection) -> dict[str, Any]:
        lock_alias(conn, name, alias)  # first: a concurrent move of this alias waits here
        _version_number(conn, name, None)  # the name exists
        current = aliases_of(conn, name).get(alias)
        if current is None:
            raise RegistryError(f"{name}: alias '{alias}' is not set; nothing to roll back")
        target = previous_holder(conn, name, alias)
        if target is None:
            raise RegistryError(
                f"{name}: alias '{alias}' has no earlier version to roll back to "
                f"(it holds version {current})"
            )
        move_alias(conn, name, alias, target, "rollback")
        return {"name": name, "alias": alias, "version": target, "previous": current}

    return transaction(engine, work)


def tag(engine: Engine, name: str, version: int | str, key: str, value: str) -> dict[str, Any]:
    """Set tag `key` of one version to `value` (a string) and return the version."""
    import sqlalchemy as sa

    if not _TAG_KEY.match(key or ""):
        raise RegistryError(f"{name}: tag key {key!r} must be 1-100 letters, digits or _ . : / -")
    c = model_versions.c

    def work(conn: Connection) -> dict[str, Any]:
        number = _version_number(conn, name, version)
        where = (c.name == name) & (c.version == number)
        # take the row's write lock first, so two taggers of one version take turns
        conn.execute(model_versions.update().where(where).values(created=c.created))
        tags = conn.execute(sa.select(c.tags).where(where)).scalar() or {}
        tags = {**tags, key: str(value)}
        conn.execute(model_versions.update().where(where).values(tags=tags))
        return _get(conn, name, number)

    return transaction(engine, work)


def alias_history(engine: Engine, name: str, alias: str | None = None) -> list[dict[str, Any]]:
    """Every move of `name`'s aliases (or of one alias), oldest first."""
    with engine.connect() as conn:
        _version_number(conn, name, None)
        return history(conn, name, alias)


def parse_ref(ref: str) -> tuple[str, str | None]:
    """(name, version or alias) of `NAME@3`, `champion@NAME` or `NAME` (its champion)."""
    text = (ref or "").strip()
    if text.count("@") > 1 or text.startswith("@") or text.endswith("@"):
        raise RegistryError(
            f"model reference {ref!r}: give NAME, NAME@VERSION or ALIAS@NAME (champion@NAME)"
        )
    if "@" not in text:
        return text, None
    left, right = text.split("@")
    return (left, right) if right.isdigit() else (right, left)


def resolve(engine: Engine, ref: str) -> str:
    """The folder that `NAME@3`, `champion@NAME` or `NAME` (its champion) points at."""
    name, which = parse_ref(ref)
    check_name(name, "model name")
    with engine.connect() as conn:
        if which is None and CHAMPION not in aliases_of(conn, name):
            _version_number(conn, name, None)  # an unknown name says so
            raise RegistryError(
                f"{name}: no champion yet; give {name}@VERSION or promote one "
                f"(tunelab registry promote {name} VERSION)"
            )
        return _get(conn, name, which or CHAMPION)["path"]
