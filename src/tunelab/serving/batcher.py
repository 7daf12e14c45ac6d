"""Dynamic batching for classifiers, taggers and encoder-decoders: concurrent requests share
one forward pass (one `model.generate` for seq2seq models, see seq2seq.py).

Each text may carry one value beside it (`pairs`): a sentence pair's second text, or a
seq2seq prompt's decoding settings; `run` gets the values of its batch.

A queue per model. Its worker takes the first waiting text, then keeps collecting until
`max_batch_size` texts are in hand or `max_wait_ms` has passed (not waiting at all under
light load: when the last batch held one text and nobody else waits), runs the batch in the
model's own threads (`workers` batches at once; the event loop stays free to accept and
collect the next batch meanwhile), and hands each request its rows. Under load the queue fills
while batches run, so batches grow with the number of clients without any waiting at all.

`workers`: on a CPU a forward pass with one intra-op thread uses one core, and torch releases
the GIL inside its ops, so two batches in two threads use two cores; `default_workers()` fills
the cores that torch's own intra-op threads leave idle (1 on a GPU).

`hold` is the same test/operator hook as the generation engine's (off unless given): while
`hold()` is true no batch runs, so requests wait and time out whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tunelab.serving.engine import QueueFull

log = logging.getLogger("tunelab.serving")


@dataclass
class Item:
    text: str
    pair: str | None
    future: asyncio.Future


class DynamicBatcher:
    """`await batcher.submit(texts, pairs)` -> one result per text, from `run(texts, pairs)`."""

    def __init__(
        self,
        run: Callable[[list[str], list[str] | None], list[dict]],
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        max_queue: int = 1024,
        on_batch: Callable[[int], None] | None = None,
        name: str = "model",
        workers: int = 1,
        hold: Callable[[], bool] | None = None,
    ):
        self.run, self.name, self.hold = run, name, hold
        self.max_batch_size, self.max_wait = max_batch_size, max_wait_ms / 1000
        self.max_queue = max_queue
        self.on_batch = on_batch or (lambda n: None)
        self.queue: asyncio.Queue[Item] | None = None
        self.workers = max(1, workers)
        self.executor = ThreadPoolExecutor(self.workers, thread_name_prefix=f"tunelab-{name}")
        self.running: set[asyncio.Task] = set()
        self.task: asyncio.Task | None = None
        self.last_size = 0  # texts in the previous batch

    def start(self) -> None:
        """Start the worker on the running event loop."""
        self.queue = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._work())

    async def close(self) -> None:
        if self.task:
            self.task.cancel()
        for task in self.running:
            task.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def waiting(self) -> int:
        """Texts in the queue (those of requests that gave up included, until collected)."""
        return self.queue.qsize() if self.queue is not None else 0

    async def submit(self, texts: list[str], pairs: list[str] | None = None) -> list[dict]:
        if self.queue.qsize() + len(texts) > self.max_queue:
            raise QueueFull(f"{self.queue.qsize()} texts already wait")
        loop = asyncio.get_running_loop()
        items = [
            Item(t, pairs[i] if pairs else None, loop.create_future()) for i, t in enumerate(texts)
        ]
        for item in items:
            self.queue.put_nowait(item)
        return list(await asyncio.gather(*(i.future for i in items)))

    async def _collect(self) -> list[Item]:
        batch = [await self.queue.get()]
        while self.hold is not None and self.hold():
            await asyncio.sleep(0.01)  # held (test/operator hook): no batch until released
        if self.last_size <= 1 and self.queue.empty():
            return batch  # light load: waiting for company would only add latency
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while len(batch) < self.max_batch_size:
            if not self.queue.empty():
                batch.append(self.queue.get_nowait())
                continue
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), left))
            except asyncio.TimeoutError:
                break
        return [i for i in batch if not i.future.done()]  # drop requests already given up

    async def _work(self) -> None:
        free = asyncio.Semaphore(self.workers)
        while True:
            await free.acquire()  # a worker is free: collect its batch (the queue grows meanwhile)
            batch = await self._collect()
            if not batch:
                free.release()
                continue
            self.on_batch(len(batch))
            self.last_size = len(batch)
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self.running.add(task)
            task.add_done_callback(lambda t: (self.running.discard(t), free.release()))

    async def _run(self, batch: list[Item]) -> None:
        loop = asyncio.get_running_loop()
        # texts with and without a pair cannot share one tokenizer call
        for group in (
            [i for i in batch if i.pair is None],
            [i for i in batch if i.pair is not None],
        ):
            if not group:
                continue
            pairs = [i.pair for i in group] if group[0].pair is not None else None
            try:
                results = await loop.run_in_executor(
                    self.executor, self.run, [i.text for i in group], pairs
                )
            except Exception as exc:  # fail these requests, keep serving
                log.exception("batch of %s failed", self.name)
                for item in group:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            for item, result in zip(group, results):
                if not item.future.done():
                    item.future.set_result(result)


def default_workers(on_gpu: bool) -> int:
    """Batches run at once: 1 on a GPU; on a CPU, the cores left over by torch's intra-op
    threads (2 cores with OMP_NUM_THREADS=1: 2 workers; torch's default of all cores: 1)."""
    if on_gpu:
        return 1
    import os

    import torch

    return max(1, (os.cpu_count() or 1) // max(1, torch.get_num_threads()))
