"""Timeouts (504) and a full queue (429) on a real server with tight limits.

The slow path is made certain with the server's test hook, not with work sized to outlast the
timeout: while the `--hold-file` exists the engine does nothing, so a request waits past its
deadline however fast the machine decodes; deleting the file releases it.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest
from serving_helpers import running_server


@pytest.fixture(scope="module")
def server(tiny_llama, tmp_path_factory):
    folder = tmp_path_factory.mktemp("timeouts")
    hold_file = folder / "hold"
    args = [f"tiny={tiny_llama}", "--timeout-s", "1.0", "--max-queue", "1", "--max-batch-size", "1"]
    with running_server([*args, "--hold-file", str(hold_file)], folder / "server.log") as base:
        yield base, hold_file


@contextmanager
def held(hold_file):
    """The engine does no work inside the block."""
    hold_file.touch()
    try:
        yield
    finally:
        hold_file.unlink()


def _post(url: str, stream: bool = False, max_tokens: int = 2) -> httpx.Response:
    body = {"model": "tiny", "prompt": "x", "max_tokens": max_tokens, "temperature": 0}
    return httpx.post(f"{url}/v1/completions", json={**body, "stream": stream}, timeout=60)


def _queued(url: str) -> int:
    text = httpx.get(f"{url}/metrics", timeout=60).text
    return int(float(re.search(r'tunelab_queued_requests\{model="tiny"\} (\S+)', text)[1]))


def test_slow_request_times_out_with_504(server):
    url, hold_file = server
    with held(hold_file):
        reply = _post(url)
        assert reply.status_code == 504 and reply.json()["error"]["code"] == "timeout"
        lines = _post(url, stream=True).text.split("\n\n")
        assert '"code": "timeout"' in lines[-3] and lines[-2] == "data: [DONE]"
        # the timed-out requests still sit in the held queue, but take no place in it
        assert _queued(url) == 0
    # released: the server goes on serving, the cancelled work is dropped
    ok = _post(url)
    assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] == 2


def test_full_queue_answers_429(server):
    url, hold_file = server
    with ThreadPoolExecutor(6) as pool:
        with held(hold_file):
            first = pool.submit(_post, url)
            while _queued(url) < 1:  # the first request waits in the (one-place) queue
                assert not first.done(), first.result().text
                time.sleep(0.01)
            # the queue stays full until the first request's 1 s deadline: these take a
            # few milliseconds on loopback, however fast the model decodes
            others = list(pool.map(lambda _: _post(url), range(5)))
        codes = [r.status_code for r in others]
        assert codes == [429] * 5, codes
        assert others[0].json()["error"]["type"] == "rate_limit_error"
        # released: the waiting request is answered (or had already timed out)
        assert first.result().status_code in (200, 504)
