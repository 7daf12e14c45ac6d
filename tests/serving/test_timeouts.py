"""Timeouts (504) and a full queue (429) on a real server with tight limits."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from serving_helpers import running_server


@pytest.fixture(scope="module")
def url(tiny_llama, tmp_path_factory):
    args = [f"tiny={tiny_llama}", "--timeout-s", "1.0", "--max-queue", "1", "--max-batch-size", "1"]
    with running_server(args, tmp_path_factory.mktemp("log") / "server.log") as base:
        yield base


def _long(stream: bool = False) -> dict:
    # 470 tokens: over 2 s of decoding on a quiet machine, well past the 1 s timeout (greedy
    # from "x", the tiny random model does not end its turn early)
    return {"model": "tiny", "prompt": "x", "max_tokens": 470, "temperature": 0, "stream": stream}


def test_slow_request_times_out_with_504(url):
    reply = httpx.post(f"{url}/v1/completions", json=_long(), timeout=30)
    assert reply.status_code == 504 and reply.json()["error"]["code"] == "timeout"
    lines = httpx.post(f"{url}/v1/completions", json=_long(stream=True), timeout=30).text.split(
        "\n\n"
    )
    assert '"code": "timeout"' in lines[-3] and lines[-2] == "data: [DONE]"
    # the server goes on serving after cancelling the work
    ok = httpx.post(f"{url}/v1/completions", json={**_long(), "max_tokens": 2}, timeout=30)
    assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] == 2


def test_full_queue_answers_429(url):
    with ThreadPoolExecutor(6) as pool:
        replies = list(
            pool.map(
                lambda _: httpx.post(f"{url}/v1/completions", json=_long(), timeout=30), range(6)
            )
        )
    codes = [r.status_code for r in replies]
    assert 429 in codes and set(codes) <= {429, 504}, codes
    busy = next(r for r in replies if r.status_code == 429)
    assert busy.json()["error"]["type"] == "rate_limit_error"
