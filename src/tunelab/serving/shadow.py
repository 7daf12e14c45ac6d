"""Shadow mode: `tunelab serve champion@sst2 --shadow challenger@sst2`.

The shadow model answers every input the served model answers, and nobody sees its answer:
once the served model has answered, the reply goes out with its outputs only, and the same
texts go to the shadow's own engine (its own batcher, its own weights) in a background task. What the shadow
said is written to `shadow_predictions` beside the prediction log, one row per input, keyed by
the served input's row id, with whether the two agree; `tunelab shadow NAME` reports the
agreement and the estimated difference (monitor/shadow.py), and /metrics counts compared,
agreeing and skipped inputs.

The shadow never slows or fails a request: its work starts after the reply, a full shadow
queue skips the input (counted in tunelab_shadow_skipped_total) instead of waiting, and its
errors are logged in its rows. It does cost compute: on a CPU, every shadowed input is a
second forward pass on the same cores. A shadow following an alias (`challenger@sst2`) is
swapped like a served one when the alias moves (alias_watch.py, role "shadow").
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from tunelab.serving.engine import QueueFull

log = logging.getLogger("tunelab.serving")

# the routes whose answers two models can be compared on
SHADOW_KINDS = ("classify", "entities", "answer")
# shadow inputs in flight at once; past it an input is skipped (the shadow is behind)
MAX_PENDING = 1024


def answer_key(kind: str, out) -> object:
    """What two answers must share to agree: the label (set of labels), the entity spans
    with their types, the answer span."""
    if not isinstance(out, dict):
        return None
    if kind == "classify":
        return tuple(sorted(out["labels"])) if "labels" in out else out.get("label")
    if kind == "entities":
        return frozenset((e.get("type"), e.get("start"), e.get("end")) for e in out["entities"])
    return (out.get("start"), out.get("end"))


def agrees(kind: str, a, b) -> bool:
    return answer_key(kind, a) == answer_key(kind, b)


class Shadows:
    """The shadow models of one server: `follow` after a reply; `close` at shutdown."""

    def __init__(self, registry, engines: dict, inflight, metrics, url: str, timeout_s: float):
        from tunelab.store.log_writer import PredictionLog
        from tunelab.store.tables import shadow_predictions

        self.registry, self.engines, self.inflight = registry, engines, inflight
        self.metrics, self.timeout_s = metrics, timeout_s
        self.writer = PredictionLog(url, table=shadow_predictions)
        self._tasks: set[asyncio.Task] = set()

    def start(self) -> None:
        self.writer.start()  # StoreError when the database cannot be reached

    def follow(self, served, texts, pairs, ids: list[str], outputs: list[dict]) -> None:
        """Run `served`'s shadow (if it has one) on the inputs just answered; returns at once."""
        shadow = self.registry.shadows.get(served.name)
        if shadow is None:
            return
        if len(self._tasks) >= MAX_PENDING:
            self.metrics.shadow_skipped.labels(served.name).inc(len(texts))
            return
        engine = self.engines[shadow.group]
        release = self.inflight.lease(engine)  # now: a swap waits for this run to finish
        work = self._run(served, shadow, engine, release, texts, pairs, ids, outputs)
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, served, shadow, engine, release, texts, pairs, ids, outputs) -> None:
        start, status, error, results = time.perf_counter(), 200, None, None
        try:
            results = await asyncio.wait_for(engine.submit(texts, pairs), self.timeout_s)
        except QueueFull:
            self.metrics.shadow_skipped.labels(served.name).inc(len(texts))
            return
        except asyncio.TimeoutError:
            status, error = 504, f"shadow took longer than {self.timeout_s:g}s"
        except Exception as exc:  # the shadow's failure is its own: logged, never raised
            status, error = 500, f"{type(exc).__name__}: {exc}"
        finally:
            release()
        latency_ms = (time.perf_counter() - start) * 1000
        self.writer.write(
            self._rows(served, shadow, ids, outputs, results, latency_ms, status, error)
        )

    def _rows(self, served, shadow, ids, outputs, results, latency_ms, status, error) -> list[dict]:
        from tunelab.serving.prediction_log import (
            confidence_of,
            label_of,
            split_internal,
        )

        if results is not None:
            split_internal(results)  # the embedding and token counts are the log's, not ours
        version = shadow.fingerprint  # taken when the shadow loaded: no disk walk here
        now, kind, rows, agreed = time.time(), shadow.kind, [], 0
        for i, prediction_id in enumerate(ids):
            out = results[i] if results is not None else None
            same = agrees(kind, outputs[i], out) if out is not None else None
            agreed += bool(same)
            rows.append(
                {
                    "id": uuid.uuid4().hex,
                    "prediction_id": prediction_id,
                    "time": now,
                    "model": served.name,
                    "version": version,
                    "path": shadow.path,
                    "reference": shadow.reference,
                    "registry_version": shadow.version,
                    "served_path": served.path,
                    "kind": kind,
                    "output": out,
                    "label": label_of(kind, out),
                    "confidence": confidence_of(kind, out),
                    "agrees": same,
                    "latency_ms": latency_ms,
                    "status": status,
                    "error": error,
                }
            )
        if results is not None:
            self.metrics.shadow_compared.labels(served.name).inc(len(ids))
            self.metrics.shadow_agreed.labels(served.name).inc(agreed)
        return rows

    async def close(self, timeout: float = 60.0) -> None:
        """Let the shadow runs under way finish (the engines are still up), then write their
        rows and stop the writer."""
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in late:
                task.cancel()
        await asyncio.to_thread(self.writer.close)
