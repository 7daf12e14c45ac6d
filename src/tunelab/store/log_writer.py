"""The prediction log's writer: rows queue in memory and a thread inserts them in batches.

`write` never blocks and never raises: a request is answered whatever the database does. A
failed insert keeps its rows (the backlog, counted and logged once per outage) and retries
with backoff; `close` writes everything still queued, so an answered request is never lost
while the database is there to take it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from tunelab.store.tables import COLUMNS, predictions

log = logging.getLogger("tunelab.store")


class PredictionLog:
    def __init__(self, url: str, batch_rows: int = 256, flush_s: float = 0.5):
        self.url, self.batch_rows, self.flush_s = url, batch_rows, flush_s
        self._rows: deque[dict] = deque()
        self._lock = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._engine = None
        self.written = 0
        self.failures = 0
        self._down_since: float | None = None

    @property
    def backlog(self) -> int:
        """Rows accepted but not yet in the database."""
        return len(self._rows)

    def start(self) -> None:
        """Open (and migrate) the database: StoreError now if it cannot be reached."""
        from tunelab.store.db import open_db

        self._engine = open_db(self.url)
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def write(self, rows: list[dict]) -> None:
        with self._lock:
            self._rows.extend({c: r.get(c) for c in COLUMNS} for r in rows)
            if len(self._rows) >= self.batch_rows:
                self._lock.notify()

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued (trying until `timeout`), then stop the thread."""
        with self._lock:
            self._closing = True
            self._lock.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._rows:
            log.error(
                "prediction log: %d rows could not be written before shutdown", len(self._rows)
            )
        if self._engine is not None:
            self._engine.dispose()

    def _run(self) -> None:
        backoff = self.flush_s
        deadline = None
        while True:
            with self._lock:
                if not self._closing and len(self._rows) < self.batch_rows:
                    self._lock.wait(backoff)
                batch = [self._rows[i] for i in range(min(len(self._rows), self.batch_rows))]
                closing = self._closing
            if batch:
                if self._insert(batch):
                    with self._lock:
                        for _ in batch:
                            self._rows.popleft()
                    backoff = self.flush_s
                    continue  # more may wait
                backoff = min(max(backoff * 2, 0.2), 5.0)
                if closing:
                    deadline = deadline or time.monotonic() + 30
                    if time.monotonic() > deadline:
                        return
                    time.sleep(min(backoff, 1.0))
            elif closing:
                return

    def _insert(self, batch: list[dict]) -> bool:
        try:
            with self._engine.begin() as conn:
                conn.execute(predictions.insert(), batch)
        except Exception as exc:
            self.failures += 1
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.warning(
                    "prediction log: cannot write to the database (%s); keeping %d rows and "
                    "retrying",
                    str(getattr(exc, "orig", None) or exc).splitlines()[0],
                    len(self._rows),
                )
            return False
        if self._down_since is not None:
            log.warning(
                "prediction log: the database is back after %.0f s; writing the backlog",
                time.monotonic() - self._down_since,
            )
            self._down_since = None
        self.written += len(batch)
        return True
