"""The one database: URLs, opening and migrating it, and a clear error when it is not there."""

from __future__ import annotations

import postgres
import pytest
import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext

from tunelab.errors import TunelabError
from tunelab.store.db import (
    DEFAULT_URL,
    MIGRATIONS,
    StoreError,
    current_revision,
    database_url,
    head_revision,
    open_db,
    shown_url,
)

# the fixtures of a real PostgreSQL server and of an empty database of each kind
pg_server, db_url = postgres.pg_server, postgres.db_url


def test_database_url_prefers_the_argument_then_the_environment(monkeypatch):
    monkeypatch.delenv("TUNELAB_DB", raising=False)
    assert database_url(None) == DEFAULT_URL == "sqlite:///tunelab.db"
    monkeypatch.setenv("TUNELAB_DB", "sqlite:///env.db")
    assert database_url(None) == "sqlite:///env.db"
    assert database_url("sqlite:///arg.db") == "sqlite:///arg.db"


def test_open_db_migrates_to_head_and_is_idempotent(db_url):
    first = open_db(db_url)
    newest = max(f.name.split("_")[0] for f in (MIGRATIONS / "versions").glob("0*.py"))
    assert current_revision(first) == head_revision() == newest
    first.dispose()
    again = open_db(db_url)  # a second open finds the schema current and changes nothing
    with again.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head_revision()
        inspector = sa.inspect(conn)
        assert "predictions" in inspector.get_table_names()
        index = {i["name"]: i["column_names"] for i in inspector.get_indexes("predictions")}
        assert index["ix_predictions_model_time"] == ["model", "time"]
    again.dispose()


def test_sqlite_uses_wal(tmp_path):
    engine = open_db(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    engine.dispose()


def test_postgresql_urls_use_psycopg3(pg_server):
    engine = open_db(pg_server.url)
    assert engine.dialect.driver == "psycopg"
    engine.dispose()


def test_unreachable_postgres_is_one_line_naming_the_url_without_password():
    with pytest.raises(StoreError) as err:
        open_db("postgresql://tunelab:secret@127.0.0.1:1/tunelab")
    message = str(err.value)
    assert isinstance(err.value, TunelabError)
    assert "\n" not in message
    assert "127.0.0.1:1/tunelab" in message and "secret" not in message


def test_missing_sqlite_folder_and_bad_urls_are_store_errors(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        open_db(f"sqlite:///{tmp_path / 'nope' / 'log.db'}")
    with pytest.raises(StoreError, match="not supported"):
        open_db("mysql://u:pw@localhost/db")
    with pytest.raises(StoreError, match="not a URL"):
        open_db("just a file name")


def test_shown_url_masks_the_password():
    assert shown_url("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert shown_url("sqlite:///x.db") == "sqlite:///x.db"


def test_many_opens_at_once_on_a_new_database_all_succeed(db_url):
    import threading

    results: list[object] = []

    def opener():
        try:
            engine = open_db(db_url)
            results.append(current_revision(engine))
            engine.dispose()
        except Exception as exc:  # collected, asserted below
            results.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [head_revision()] * 4
