"""The classify/entities batcher: concurrent texts share batches, batches run on `workers`
threads at once, and every request gets its own rows back."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tunelab.serving.batcher import DynamicBatcher, default_workers


class Recorder:
    """A batch function that records how many batches ran at the same moment and how big they
    were. With `meet=2`, the first two batches each wait (in their threads) until both run, so
    two workers overlap whatever the machine's speed; a batcher that never runs two at once
    breaks the barrier (its timeout only bounds a hang)."""

    def __init__(self, meet: int = 1):
        self.lock, self.now, self.peak, self.sizes = threading.Lock(), 0, 0, []
        self.barrier = threading.Barrier(meet) if meet > 1 else None

    def __call__(self, texts, pairs):
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.sizes.append(len(texts))
            first = len(self.sizes) <= (self.barrier.parties if self.barrier else 0)
        if first:
            self.barrier.wait(timeout=60)
        else:
            time.sleep(0.005)  # a chance to overlap for a batcher that should not
        with self.lock:
            self.now -= 1
        return [
            {"label": t.upper(), "pair": p} for t, p in zip(texts, pairs or [None] * len(texts))
        ]


async def _serve(workers: int, n: int) -> tuple[Recorder, list]:
    run = Recorder(meet=workers)
    batcher = DynamicBatcher(run, max_batch_size=4, max_wait_ms=1, workers=workers)
    batcher.start()
    try:
        texts = [f"text {i}" for i in range(n)]
        answers = await asyncio.gather(*(batcher.submit([t]) for t in texts))
    finally:
        await batcher.close()
    return run, answers


@pytest.mark.parametrize("workers", [1, 2])
def test_each_request_gets_its_own_rows_and_batches_overlap_with_workers(workers):
    run, answers = asyncio.run(_serve(workers, 24))
    assert [a[0]["label"] for a in answers] == [f"TEXT {i}" for i in range(24)]
    assert sum(run.sizes) == 24 and max(run.sizes) > 1  # concurrent texts were batched
    assert run.peak == workers  # 2 workers: two batches at once; 1: never


def test_pairs_and_single_texts_do_not_share_a_call():
    async def go():
        run = Recorder()
        batcher = DynamicBatcher(run, max_batch_size=8, max_wait_ms=20, workers=1)
        batcher.start()
        try:
            return await asyncio.gather(
                batcher.submit(["a", "b"]), batcher.submit(["c"], ["premise"])
            )
        finally:
            await batcher.close()

    plain, paired = asyncio.run(go())
    assert [r["pair"] for r in plain] == [None, None] and paired[0]["pair"] == "premise"


def test_default_workers_fill_the_idle_cores(monkeypatch):
    import os

    import torch

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert default_workers(on_gpu=False) == 4 and default_workers(on_gpu=True) == 1
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert default_workers(on_gpu=False) == 1


def test_hold_runs_no_batch_until_released():
    """The test/operator hook: while held, a request waits past any deadline; then it runs."""

    async def go():
        held = [True]
        run = Recorder()
        batcher = DynamicBatcher(run, max_wait_ms=1, hold=lambda: held[0])
        batcher.start()
        try:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(batcher.submit(["dropped"]), 0.05)
            assert run.sizes == []
            held[0] = False
            return await batcher.submit(["kept"])
        finally:
            await batcher.close()

    assert asyncio.run(go()) == [{"label": "KEPT", "pair": None}]
