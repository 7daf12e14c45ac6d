"""Aliases of a registered model name (champion, challenger, ...): where each points now, the
history of its moves, and the one-transaction writes that move it.

Two writers of one alias must not interleave (a promote that reads the old holder while
another commits would record a wrong history, and rollback walks that history). Each move
therefore starts by writing the alias's row, which takes its row lock on PostgreSQL and the
database's write lock on SQLite before anything is read; the very first move of an alias has
no row to lock, and there the primary key (name, alias) refuses the second insert and the
transaction is retried (`transaction`).
"""

from __future__ import annotations

import random
import re
import time
from typing import TYPE_CHECKING, Any, TypeVar

from tunelab.errors import TunelabError
from tunelab.store.tables import alias_history, model_aliases

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import Connection, Engine

T = TypeVar("T")
CHAMPION = "champion"
ACTIONS = ("add", "promote", "rollback")
RETRIES = 10
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_RETRYABLE = ("locked", "busy", "deadlock", "could not serialize")


class RegistryError(TunelabError):
    """A registry request that cannot be done: an unknown name, version or alias, a rollback
    with nothing to go back to. The message names the model, version or alias."""


def check_name(value: str, what: str) -> None:
    """Model names and aliases: letters, digits, `.`, `_` and `-` (no `@`, which joins them
    in references); an alias is not a bare number, which would read as a version."""
    limit = 100 if what == "alias" else 200
    if not isinstance(value, str) or not _NAME.match(value) or len(value) > limit:
        raise RegistryError(
            f"{what} {value!r}: use letters, digits, '.', '_' and '-' (at most {limit}), "
            "starting with a letter or digit"
        )
    if what == "alias" and value.isdigit():
        raise RegistryError(f"alias {value!r}: a bare number reads as a version; name it")


def transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    """`work(conn)` in one transaction, retried when it lost a race (a unique key taken by a
    concurrent writer, SQLite's lock, a PostgreSQL deadlock). Any other database failure is a
    one-line StoreError naming the database; a RegistryError from `work` passes through and
    writes nothing."""
    import sqlalchemy.exc as sx

    from tunelab.store.db import StoreError

    for attempt in range(RETRIES):
        try:
            with engine.begin() as conn:
                return work(conn)
        except (sx.IntegrityError, sx.OperationalError) as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            lost_race = isinstance(exc, sx.IntegrityError) or any(
                word in reason.lower() for word in _RETRYABLE
            )
            if not lost_race or attempt == RETRIES - 1:
                url = engine.url.render_as_string(hide_password=True)
                raise StoreError(f"database {url}: {reason}") from None
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
    raise AssertionError("unreachable")


def aliases_of(conn: Connection, name: str) -> dict[str, int]:
    """{alias: version} of `name` now."""
    import sqlalchemy as sa

    c = model_aliases.c
    rows = conn.execute(sa.select(c.alias, c.version).where(c.name == name))
    return {alias: version for alias, version in rows}


def lock_alias(conn: Connection, name: str, alias: str) -> None:
    """Take the alias's write lock for the rest of the transaction (see the module
    docstring): a no-op write of its row."""
    c = model_aliases.c
    conn.execute(
        model_aliases.update().where(c.name == name, c.alias == alias).values(updated=c.updated)
    )


def move_alias(conn: Connection, name: str, alias: str, version: int, action: str) -> int | None:
    """Point `alias` of `name` at `version` and record the move; returns the version it held
    before (None: unset). Moving it to the version it already holds is not a move: nothing is
    written or recorded. Call inside `transaction`."""
    import sqlalchemy as sa

    assert action in ACTIONS, action
    lock_alias(conn, name, alias)
    c = model_aliases.c
    where = (c.name == name) & (c.alias == alias)
    previous = conn.execute(sa.select(c.version).where(where)).scalar()
    if previous == version:
        return previous
    now = time.time()
    if previous is None:  # a concurrent first insert fails on the primary key: retried
        conn.execute(
            model_aliases.insert().values(name=name, alias=alias, version=version, updated=now)
        )
    else:
        conn.execute(model_aliases.update().where(where).values(version=version, updated=now))
    conn.execute(
        alias_history.insert().values(
            name=name,
            alias=alias,
            from_version=previous,
            to_version=version,
            time=now,
            action=action,
        )
    )
    return previous


def history(conn: Connection, name: str, alias: str | None = None) -> list[dict[str, Any]]:
    """The moves of `name`'s aliases (or of one), oldest first, as dicts."""
    import sqlalchemy as sa

    c = alias_history.c
    q = sa.select(alias_history).where(c.name == name).order_by(c.id)
    if alias is not None:
        q = q.where(c.alias == alias)
    out = []
    for r in conn.execute(q):
        d = dict(r._mapping)
        d.pop("id")
        out.append(d)
    return out


def holders(conn: Connection, name: str, alias: str) -> list[int]:
    """The alias's holders as a stack, oldest first, the current one last: every add or
    promote pushes its version, every rollback pops one. So a second rollback goes one
    further back instead of returning to where the first one came from."""
    stack: list[int] = []
    for move in history(conn, name, alias):
        if move["action"] == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != move["to_version"]:  # history written by hand
                stack.append(move["to_version"])
        else:
            stack.append(move["to_version"])
    return stack


def previous_holder(conn: Connection, name: str, alias: str) -> int | None:
    """The version a rollback of `alias` returns to (None: there is no earlier holder)."""
    stack = holders(conn, name, alias)
    return stack[-2] if len(stack) >= 2 else None
