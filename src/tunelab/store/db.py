"""The one database: its URL, opening it, and bringing its schema to the newest migration.

`--db URL` on every command that uses it, else $TUNELAB_DB, else `sqlite:///tunelab.db` in the
working directory. `postgresql://` URLs (a team's shared log) go through psycopg 3.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from tunelab.errors import TunelabError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

DEFAULT_URL = "sqlite:///tunelab.db"
# Alembic's `context` is one module-level proxy per process: two migrations at once in two
# threads would share it, so they take turns
_MIGRATING = threading.Lock()
MIGRATIONS = Path(__file__).parent / "migrations"
# alembic says "setup plugin ..." and "Running upgrade ..." at INFO: noise at a terminal
logging.getLogger("alembic").setLevel(logging.WARNING)


class StoreError(TunelabError):
    """The database cannot be opened or written; the message names it (password hidden)."""


def database_url(arg: str | None = None) -> str:
    """`arg` (--db), else $TUNELAB_DB, else DEFAULT_URL."""
    return arg or os.environ.get("TUNELAB_DB") or DEFAULT_URL


def shown_url(url: str) -> str:
    """The URL as it may be printed: any password replaced by ***."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1] if "@" in url else url


def _engine_url(url: str):
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        raise StoreError(
            f"database URL {shown_url(url)!r}: not a URL (sqlite:///FILE, postgresql://...)"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    if backend != "sqlite":
        raise StoreError(
            f"database {shown_url(url)}: {backend} is not supported (sqlite:///FILE or "
            "postgresql://USER@HOST/DB)"
        )
    return parsed


def create(url: str):
    """A SQLAlchemy engine for `url` (no connection yet)."""
    import sqlalchemy as sa

    target = _engine_url(url)
    if target.get_backend_name() == "sqlite":
        engine = sa.create_engine(target, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(conn, _):
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers (tunelab monitor) never block the log
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return sa.create_engine(target, pool_pre_ping=True, connect_args={"connect_timeout": 10})


def _alembic_config(connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def open_db(url: str) -> Engine:
    """The engine of `url`, its schema migrated to the newest revision (Alembic `head`).
    StoreError, one line, when the database cannot be reached."""
    from alembic import command

    engine = create(url)
    target = _engine_url(url)
    if target.get_backend_name() == "sqlite" and target.database:
        folder = Path(target.database).expanduser().resolve().parent
        if not folder.is_dir():
            raise StoreError(f"database {shown_url(url)}: folder {folder} does not exist")
    try:
        with _MIGRATING, engine.begin() as conn:
            command.upgrade(_alembic_config(conn), "head")
    except Exception as exc:
        if _at_head(engine):  # another process migrated it at the same moment: fine
            return engine
        engine.dispose()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise StoreError(f"database {shown_url(url)} cannot be opened: {reason}") from None
    return engine


def _at_head(engine) -> bool:
    try:
        return current_revision(engine) == head_revision()
    except Exception:
        return False


def current_revision(engine) -> str | None:
    """The revision the database's schema is at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest revision of the packaged migrations."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(None)).get_current_head()
