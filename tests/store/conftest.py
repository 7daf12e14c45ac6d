"""Fixtures for the store tests: a SQLite file per test, and one real PostgreSQL server per
session (tests/store/postgres.py), each test on a fresh database of its own."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from postgres import pg_bin, postgres_server  # noqa: E402


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
