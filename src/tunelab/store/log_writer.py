"""The prediction log's writer: rows queue in memory and a thread inserts them in batches.

`write` never blocks and never raises: a request is answered whatever the database does. A
failed insert keeps its rows (the backlog, counted and logged once per outage) and retries
with backoff; `close` writes everything still queued, so an answered request is never lost
while the database is there to take it. A row the database rejects for itself (a duplicate
id, a value that is not JSON) is set aside alone, logged and counted in `dropped`, so that one
bad row cannot hold the rest of the log back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from tunelab.store.tables import predictions

log = logging.getLogger("tunelab.store")

MAX_BACKOFF_S = 5.0


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_outage(exc: BaseException) -> bool:
    """True when the database is away (retry the same rows), False when it refused the data."""
    import sqlalchemy.exc as sx

    if isinstance(exc, (sx.IntegrityError, sx.DataError)):
        return False
    # a value that cannot be bound (not JSON, not bytes) fails before the database is asked
    return isinstance(exc, sx.DBAPIError) or not isinstance(exc, sx.StatementError)


class PredictionLog:
    """Batched, thread-safe writer of `predictions` rows (see the module docstring); of
    another table's rows with `table` (the shadow model's answers: tables.shadow_predictions)."""

    def __init__(self, url: str, batch_rows: int = 256, flush_s: float = 0.5, table=predictions):
        self.url, self.batch_rows, self.flush_s = url, max(1, int(batch_rows)), flush_s
        self.table = table
        self._columns = [c.name for c in table.columns]
        self._rows: deque[dict] = deque()
        self._lock = threading.Condition()
        self._closing = False
        self._deadline: float | None = None
        self._thread: threading.Thread | None = None
        self._engine = None
        self._written = 0
        self._failures = 0
        self._dropped = 0
        self._down_since: float | None = None

    @property
    def backlog(self) -> int:
        """Rows accepted but not yet in the database."""
        return len(self._rows)

    @property
    def engine(self):
        """The opened database's engine (None before start())."""
        return self._engine

    @property
    def written(self) -> int:
        """Rows inserted so far."""
        return self._written

    @property
    def failures(self) -> int:
        """Failed insert attempts (each one kept its rows for the next try)."""
        return self._failures

    @property
    def dropped(self) -> int:
        """Rows the database refused for themselves (logged one by one with logging.error)."""
        return self._dropped

    def start(self) -> None:
        """Open (and migrate) the database: StoreError now if it cannot be reached."""
        from tunelab.store.db import open_db

        self._engine = open_db(self.url)
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def write(self, rows: list[dict]) -> None:
        """Queue `rows` (dicts with the columns of tables.predictions); returns at once."""
        try:
            prepared = [self._row(r) for r in rows]
        except Exception as exc:  # never fail the request that logs
            log.error("prediction log: rows that are not dicts were not logged (%s)", exc)
            return
        with self._lock:
            self._rows.extend(prepared)
            if len(self._rows) >= self.batch_rows:
                self._lock.notify()

    def _row(self, r: dict) -> dict:
        row = {c: r.get(c) for c in self._columns}
        if row["status"] is None:
            row["status"] = 200
        return row

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued (retrying for up to `timeout` seconds), then stop the thread."""
        with self._lock:
            self._closing = True
            self._deadline = time.monotonic() + timeout
            self._lock.notify()
        if self._thread is not None:
            self._thread.join(timeout + 1.0)
        if self._rows:
            log.error(
                "prediction log: %d rows could not be written before shutdown", len(self._rows)
            )
        if self._engine is not None:
            self._engine.dispose()

    def _run(self) -> None:
        backoff = self.flush_s
        while True:
            with self._lock:
                if not self._closing and len(self._rows) < self.batch_rows:
                    self._lock.wait(self.flush_s)
                batch = [self._rows[i] for i in range(min(len(self._rows), self.batch_rows))]
                closing = self._closing
            if not batch:
                if closing:
                    return
                continue
            if self._insert(batch):
                backoff = self.flush_s
                continue  # more may wait
            if closing and self._deadline is not None and time.monotonic() >= self._deadline:
                return
            backoff = min(max(backoff * 2, 0.1), MAX_BACKOFF_S)
            with self._lock:  # wait out the backoff; close() cuts it short
                end = time.monotonic() + backoff
                if self._deadline is not None:
                    end = min(end, self._deadline)
                while (remaining := end - time.monotonic()) > 0:
                    self._lock.wait(remaining)

    def _take(self, n: int) -> None:
        with self._lock:
            for _ in range(n):
                self._rows.popleft()

    def _insert(self, batch: list[dict]) -> bool:
        try:
            with self._engine.begin() as conn:
                conn.execute(self.table.insert(), batch)
        except Exception as exc:
            if not _is_outage(exc):
                return self._insert_one_by_one(batch)
            self._failures += 1
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.warning(
                    "prediction log: cannot write to the database (%s); keeping %d rows and "
                    "retrying",
                    _reason(exc),
                    len(self._rows),
                )
            return False
        self._back()
        self._written += len(batch)
        self._take(len(batch))
        return True

    def _insert_one_by_one(self, batch: list[dict]) -> bool:
        """The database refused the batch for its data: write the rows it takes, set aside
        the ones it refuses; stop (and retry later) if it goes away meanwhile."""
        for row in batch:
            try:
                with self._engine.begin() as conn:
                    conn.execute(self.table.insert(), [row])
            except Exception as exc:
                if _is_outage(exc):
                    self._failures += 1
                    return False
                self._dropped += 1
                log.error(
                    "prediction log: row %s refused by the database: %s",
                    row.get("id"),
                    _reason(exc),
                )
            else:
                self._written += 1
            self._take(1)
        self._back()
        return True

    def _back(self) -> None:
        if self._down_since is not None:
            log.warning(
                "prediction log: the database is back after %.0f s; writing the backlog",
                time.monotonic() - self._down_since,
            )
            self._down_since = None
