"""Which requests still use which engine, so a swapped-out engine is closed only once drained.

When a followed alias moves (alias_watch.py), new requests get the new model's engine at
once, but requests that already picked the old engine must finish on it: a classify request
may still wait in its batcher's queue, a streamed completion may still be decoding. Counting
per engine is exact where a time grace would only be likely: `model_for` leases the engine it
hands a request (`hold`), and the Gate middleware releases the request's leases when its
response has been sent to the last byte (streams included), whatever happened.

The request's leases live in a context variable that the Gate sets: the route, and any task
it starts, runs inside the Gate's context and so adds to the same list. Everything here runs
on the event loop's thread, so the counts need no lock.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar

_leases: ContextVar[list | None] = ContextVar("tunelab_request_leases", default=None)


class InFlight:
    """Requests in flight per engine."""

    def __init__(self) -> None:
        self._counts: dict[object, int] = {}  # keyed by the engine object itself

    def begin(self):
        """Start a request's lease list (the Gate, on entry); returns the token for `end`."""
        return _leases.set([])

    def end(self, token) -> None:
        """Release every engine the request held (the Gate, once the reply is sent)."""
        for engine in _leases.get() or []:
            self._release(engine)
        _leases.reset(token)

    def _release(self, engine) -> None:
        left = self._counts.get(engine, 0) - 1
        if left > 0:
            self._counts[engine] = left
        else:
            self._counts.pop(engine, None)

    def hold(self, engine) -> None:
        """Lease `engine` to the current request (no-op outside a request's context)."""
        held = _leases.get()
        if held is None:
            return
        held.append(engine)
        self._counts[engine] = self._counts.get(engine, 0) + 1

    def lease(self, engine):
        """Hold `engine` for work outside any request (a shadow run, started after its
        request was answered); call what it returns once, when the work is done."""
        self._counts[engine] = self._counts.get(engine, 0) + 1
        return lambda: self._release(engine)

    def count(self, engine) -> int:
        return self._counts.get(engine, 0)

    async def drained(self, engine, poll_s: float = 0.05) -> None:
        """Return once no request holds `engine` any more."""
        while self.count(engine) > 0:
            await asyncio.sleep(poll_s)
