"""The prediction log: rows written come back equal, the writer loses nothing on close, and a
database that goes away leaves a counted backlog that lands when it is back."""

from __future__ import annotations

import logging
import threading
import time
import uuid

import numpy as np
import postgres
import pytest
import sqlalchemy as sa

from tunelab.store.db import StoreError, open_db
from tunelab.store.log_writer import PredictionLog
from tunelab.store.predictions import logged_models, read_predictions

# the fixtures of a real PostgreSQL server and of an empty database of each kind
pg_server, db_url = postgres.pg_server, postgres.db_url


def make_row(i: int, *, model: str = "sst2", t0: float = 1_700_000_000.0) -> dict:
    rng = np.random.default_rng(i)
    return {
        "id": uuid.uuid4().hex,
        "request_id": uuid.uuid4().hex,
        "time": t0 + i,
        "model": model,
        "version": "abc123",
        "kind": "classify",
        "task": "classification",
        "input_hash": f"{i:064x}",
        "text": f"text number {i} — ünïcode",
        "pair": None if i % 2 else f"pair {i}",
        "output": {"label": "pos", "scores": {"pos": 0.75, "neg": 0.25}, "i": i},
        "label": "pos",
        "confidence": 0.75,
        "latency_ms": 3.5 + i,
        "status": 200,
        "error": None,
        "n_tokens": 10 + i,
        "n_unk": i % 3,
        "embedding": np.asarray(rng.normal(size=64), np.float16).tobytes(),
        "meta": {"group": "a" if i % 2 else "b"},
    }


def assert_same(written: dict, read: dict) -> None:
    assert set(read) == set(written)
    for key, value in written.items():
        if key == "embedding":
            expected = np.frombuffer(value, np.float16).astype(np.float32)
            assert read[key].dtype == np.float32 and read[key].shape == (64,)
            np.testing.assert_array_equal(read[key], expected)
        else:
            assert read[key] == value, key


def wait_for(condition, seconds: float = 60.0) -> None:
    """Poll until `condition()` (a generous limit, not a timing assertion)."""
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


def test_round_trip_rows_read_back_equal(db_url):
    rows = [make_row(i) for i in range(5)]
    rows[3]["embedding"] = None
    rows[4]["meta"] = None
    rows[4].update(status=500, error="boom", label=None, confidence=None)
    writer = PredictionLog(db_url, batch_rows=2)
    writer.start()
    writer.write(rows[:3])
    writer.write(rows[3:])
    writer.close()
    assert writer.written == 5 and writer.backlog == 0
    read = read_predictions(db_url)
    assert [r["id"] for r in read] == [r["id"] for r in rows]
    for w, r in zip(rows, read):
        if w["embedding"] is None:
            assert r["embedding"] is None
            w = {**w, "embedding": None}
            r = {**r}
            assert set(r) == set(w) and all(r[k] == w[k] for k in w)
        else:
            assert_same(w, r)


def test_writer_flushes_everything_on_close_from_many_threads(db_url):
    writer = PredictionLog(db_url, batch_rows=64, flush_s=10.0)  # only close() would flush
    writer.start()
    threads = [
        threading.Thread(
            target=lambda k=k: [writer.write([make_row(k * 100 + j)]) for j in range(50)]
        )
        for k in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    assert writer.backlog == 0 and writer.written == 200 and writer.failures == 0
    engine = open_db(db_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(DISTINCT id) FROM predictions")).scalar() == 200
    engine.dispose()


def test_filters_since_until_last_and_models(db_url):
    writer = PredictionLog(db_url)
    writer.start()
    writer.write([make_row(i) for i in range(10)])
    writer.write([make_row(i, model="other") for i in range(3)])
    writer.close()
    t0 = 1_700_000_000.0
    engine = open_db(db_url)
    assert logged_models(engine) == ["other", "sst2"]
    times = lambda rows: [r["time"] - t0 for r in rows]  # noqa: E731
    assert times(read_predictions(engine, model="sst2")) == list(range(10))
    assert times(read_predictions(engine, model="sst2", since=t0 + 3, until=t0 + 6)) == [3, 4, 5]
    assert times(read_predictions(engine, model="sst2", last=4)) == [6, 7, 8, 9]
    assert times(read_predictions(engine, model="sst2", since=t0 + 2, last=3)) == [7, 8, 9]
    assert len(read_predictions(engine)) == 13
    assert read_predictions(engine, model="nobody") == []
    engine.dispose()


def test_unreachable_at_start_raises_store_error():
    writer = PredictionLog("postgresql://u:pw@127.0.0.1:1/x")
    with pytest.raises(StoreError, match=r"127\.0\.0\.1:1/x"):
        writer.start()


def test_write_never_raises_and_a_refused_row_does_not_block_the_rest(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    writer = PredictionLog(url, batch_rows=8)
    writer.start()
    good = [make_row(i) for i in range(4)]
    duplicate = {**make_row(9), "id": good[0]["id"]}  # the primary key is taken
    writer.write([None])  # not a dict: logged, not raised
    writer.write(good + [duplicate])
    with caplog.at_level(logging.ERROR, logger="tunelab.store"):
        writer.close()
    assert writer.written == 4 and writer.dropped == 1 and writer.backlog == 0
    assert [r["id"] for r in read_predictions(url)] == [r["id"] for r in good]
    assert any("refused" in m for m in caplog.messages)


def test_sqlite_that_goes_away_keeps_a_counted_backlog(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    writer = PredictionLog(url, batch_rows=4, flush_s=0.05)
    writer.start()
    other = sa.create_engine(url)
    with other.begin() as conn:  # the table goes away under the running writer
        conn.exec_driver_sql("ALTER TABLE predictions RENAME TO away")
    rows = [make_row(i) for i in range(20)]
    with caplog.at_level(logging.WARNING, logger="tunelab.store"):
        for r in rows:
            writer.write([r])  # returns, does not raise
        wait_for(lambda: writer.failures >= 3)
        assert writer.backlog == 20 and writer.written == 0
        with other.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE away RENAME TO predictions")
        wait_for(lambda: writer.backlog == 0)
    writer.close()
    other.dispose()
    assert writer.written == 20
    outage = [m for m in caplog.messages if "cannot write" in m]
    assert len(outage) == 1  # once per outage, not per row or per retry
    assert any("is back" in m for m in caplog.messages)
    assert sorted(r["id"] for r in read_predictions(url)) == sorted(r["id"] for r in rows)


def test_postgres_server_that_stops_keeps_a_backlog_until_it_restarts(pg_server):
    url = pg_server.fresh_database()
    writer = PredictionLog(url, batch_rows=4, flush_s=0.05)
    writer.start()
    writer.write([make_row(i) for i in range(4)])
    wait_for(lambda: writer.written == 4)
    pg_server.stop()
    try:
        rows = [make_row(i) for i in range(4, 14)]
        writer.write(rows)
        wait_for(lambda: writer.failures >= 1)
        assert writer.backlog == 10
    finally:
        pg_server.start()
    writer.close(timeout=60)
    assert writer.backlog == 0 and writer.written == 14
    assert len(read_predictions(url)) == 14
