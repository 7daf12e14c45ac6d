"""A real PostgreSQL server for tests, started from Debian's `postgresql` package.

`postgres_server()` is a context manager that runs initdb + pg_ctl as the `postgres` system user
(the tests run as root, and PostgreSQL refuses to) in a temporary folder, listening on 127.0.0.1
at a free port with trust auth; it yields a `PostgresServer` (`.url`, `.stop()`, `.start()`) and
stops the server at the end (pg_ctl stop -m fast). Other test folders import it:

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
    from postgres import pg_bin, postgres_server, postgres_url

The pytest fixtures `pg_server` (one server per session) and `db_url` (an empty SQLite file and
an empty PostgreSQL database: tests run on both) live here too; tests/store's test modules import
them. (No conftest.py in tests/store: a second module named `conftest` would shadow
tests/conftest.py, whose helpers other test folders import by that name.)
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def pg_bin() -> Path | None:
    """The newest installed server's bin folder (/usr/lib/postgresql/N/bin), or None."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(*cmd: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)


class PostgresServer:
    """One running server; `stop()` and `start()` let a test take it away and bring it back."""

    def __init__(self, bindir: Path, datadir: Path, port: int):
        self.bindir, self.datadir, self.port = bindir, datadir, port
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args),
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='' -c fsync=off"
        self._ctl("-w", "-l", str(self.datadir.parent / "server.log"), "-o", opts, "start")

    def fresh_database(self) -> str:
        """CREATE an empty database of its own on this server; its URL."""
        import uuid

        import sqlalchemy as sa

        name = "t_" + uuid.uuid4().hex[:12]
        engine = sa.create_engine(
            self.url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
        )
        with engine.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        engine.dispose()
        return self.url.rsplit("/", 1)[0] + "/" + name

    def stop(self) -> None:
        self._ctl("-w", "-m", "fast", "stop")


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a throwaway server (see the module docstring); raises RuntimeError without one."""
    bindir = pg_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (Debian package `postgresql`)")
    root = Path(tempfile.mkdtemp(prefix="tunelab-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    datadir = root / "data"
    subprocess.run(
        _as_postgres(
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    server = PostgresServer(bindir, datadir, _free_port())
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def postgres_url() -> Iterator[str]:
    """The URL of a throwaway server, for tests that only need somewhere to write."""
    with postgres_server() as server:
        yield server.url


@pytest.fixture(scope="session")
def pg_server():
    if pg_bin() is None:
        pytest.skip("PostgreSQL is not installed (Debian package `postgresql`)")
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """An empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'log.db'}"
    return request.getfixturevalue("pg_server").fresh_database()
