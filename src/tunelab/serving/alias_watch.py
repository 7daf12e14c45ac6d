"""Follow a served registry alias: when `champion@sst2` moves, serve the new version, live.

`tunelab serve champion@sst2` must pick up a promotion or a rollback without a restart and
without failing a request. Every `every_s` seconds the watcher reads where each followed alias
points (one small query). When it names another version:

1. the version is loaded in a background thread (`Registry.load_version`), while the served
   one keeps answering;
2. on the event loop, with no await in between, the new model and a new engine replace the
   old ones under the same name. `model_for` runs on the same loop, so a request gets either
   the old pair or the new one, never a mix; new requests get the new one from then on;
3. the old engine keeps running until no request that picked it is still in flight
   (inflight.py counts them exactly), then it is closed and the old weights can be freed.

A load that fails (a folder gone or broken, a model of another task) is logged once and the
old model keeps serving; that version is not retried until the alias moves again. A database
that cannot be read is logged once per outage and changes nothing. Each swap prints one line:
`serve: sst2 now version 3 (was 2)`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable

from tunelab.serving.inflight import InFlight
from tunelab.serving.references import Target, follows_alias, resolve

log = logging.getLogger("tunelab.serving")


async def close_engine(engine) -> None:
    """Stop an engine: a batcher closes on the loop, a decoding loop's thread is joined off it."""
    if asyncio.iscoroutinefunction(engine.close):
        await engine.close()
    else:
        await asyncio.to_thread(engine.close)


class AliasWatcher:
    """Polls the followed aliases of `registry` and swaps their new versions in.

    `engines` is the app's live engine dict (group -> engine), changed in place;
    `make_engine(served)` builds and starts the engine of one loaded model on the running loop.
    The served models are `registry.models` following `registry.references`; the shadow
    models (`--shadow challenger@NAME`) are watched by a second watcher with
    `models=registry.shadows, followed=registry.shadow_references, role="shadow"`.
    """

    def __init__(
        self,
        registry,
        engines: dict,
        make_engine: Callable[[object], object],
        inflight: InFlight,
        every_s: float = 5.0,
        *,
        models: dict | None = None,
        followed: dict | None = None,
        role: str = "",
    ):
        self.registry, self.engines, self.make_engine = registry, engines, make_engine
        self.inflight, self.every_s = inflight, every_s
        self.models = registry.models if models is None else models
        refs = registry.references if followed is None else followed
        self.followed = {n: r for n, r in refs.items() if follows_alias(r)}
        self.role = f" {role}" if role else ""  # in the lines printed: "sst2 shadow now ..."
        self.swaps: list[str] = []  # the lines printed, oldest first
        self._failed: dict[str, int] = {}  # name -> the version that would not load
        self._complaint: dict[str, str] = {}  # name -> the last problem logged (log it once)
        self._db = None  # the registry's SQLAlchemy engine, opened on the first poll
        self._task: asyncio.Task | None = None
        self._draining: dict[asyncio.Task, object] = {}  # drain task -> the old engine

    def start(self) -> None:
        """Start polling on the running event loop (nothing to do without a followed alias)."""
        if self.followed and self.every_s > 0:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Stop polling (a load under way is abandoned) and close the engines still draining."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for task, engine in list(self._draining.items()):
            task.cancel()
            await close_engine(engine)
        self._draining.clear()
        if self._db is not None:
            self._db.dispose()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one bad round stop the watching
                log.exception("alias watch: a round failed; the next one tries again")

    async def check(self) -> list[str]:
        """One round: every followed alias read, and each that moved swapped in (in turn)."""
        done = []
        for name, ref in self.followed.items():
            target = await self._where(name, ref)
            served = self.models.get(name)
            if target is None or served is None or target.version == served.version:
                if target is not None and served is not None:
                    self._failed.pop(name, None)  # back where it serves: retry later moves
                continue
            if self._failed.get(name) == target.version:
                continue  # this version would not load; wait for the alias to move again
            line = await self._swap_in(name, target)
            if line:
                done.append(line)
        return done

    async def _where(self, name: str, ref: str) -> Target | None:
        """Where `ref` points now, or None (logged once) when the registry cannot say."""
        from tunelab.store.db import database_url, open_db

        try:
            if self._db is None:
                self._db = await asyncio.to_thread(open_db, database_url(self.registry.db))
            target = await asyncio.to_thread(resolve, self._db, ref)
        except Exception as exc:
            self._complain(name, f"alias watch: cannot read {ref}: {_first_line(exc)}")
            return None
        self._complaint.pop(name, None)
        return target

    async def _swap_in(self, name: str, target: Target) -> str | None:
        old = self.models[name]
        try:
            new = await asyncio.to_thread(
                self.registry.load_version, name, target, self.followed[name], old.group
            )
            if (new.task, new.kind) != (old.task, old.kind):
                raise ValueError(
                    f"it is a {new.task} model and {name} is served as {old.task} "
                    "(a restart serves it)"
                )
        except Exception as exc:
            self._failed[name] = target.version
            log.error(
                "serve: %s%s: version %s (%s) not swapped in, version %s keeps serving: %s",
                name,
                self.role,
                target.version,
                target.path,
                old.version,
                _first_line(exc),
            )
            return None
        # the swap itself: no await from here to the end, so no request sees half of it
        engine = self.make_engine(new)
        old_engine = self.engines[old.group]
        self.models[name] = new
        self.engines[new.group] = engine
        drain = asyncio.get_running_loop().create_task(self._retire(old_engine))
        self._draining[drain] = old_engine
        line = f"serve: {name}{self.role} now version {new.version} (was {old.version})"
        self.swaps.append(line)
        print(line, file=sys.stderr, flush=True)  # for the operator, at any --log-level
        return line

    async def _retire(self, engine) -> None:
        """Close a swapped-out engine once its last request has been answered."""
        try:
            await self.inflight.drained(engine)
            await close_engine(engine)
        finally:
            self._draining.pop(asyncio.current_task(), None)

    def _complain(self, name: str, message: str) -> None:
        if self._complaint.get(name) != message:
            self._complaint[name] = message
            log.warning(message)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
