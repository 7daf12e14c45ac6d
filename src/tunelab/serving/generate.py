"""/v1/chat/completions and /v1/completions: prompts -> engine jobs -> OpenAI-shaped replies.

Non-streaming replies wait for each job's final event; streaming replies forward the
engine's deltas as server-sent events (`data: {...}` ... `data: [DONE]`). Either way a
request past its deadline, or whose client went away, is cancelled in the engine.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from tunelab.serving.engine import GenJob, QueueFull
from tunelab.serving.limits import ApiError, error_body
from tunelab.serving.sampling import Sampling


def chat_prompt(served, messages) -> list[int]:
    """Token ids of a conversation through the model's chat template, ready for its reply."""
    tok = served.tokenizer
    if not getattr(tok, "chat_template", None):
        raise ApiError(
            400,
            f"model '{served.name}' has no chat template; use /v1/completions",
            "no_chat_template",
        )
    turns = [
        {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
        for m in messages
    ]
    try:
        text = tok.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    except Exception as exc:  # jinja raises on conversations the template rejects
        raise ApiError(
            400, f"messages: the chat template refused them: {exc}", param="messages"
        ) from None
    return tok(text, add_special_tokens=False)["input_ids"]


def token_budget(served, requested: int | None, prompt_len: int, limit: int) -> int:
    """max_tokens for a prompt: the request's (400 over the server's limit or past the
    model's context), else the run's generation.max_new_tokens or the limit, as room allows."""
    if requested is not None and requested > limit:
        raise ApiError(
            400,
            f"max_tokens: {requested} is over this server's limit of {limit}",
            "max_tokens_over_limit",
            "max_tokens",
        )
    room = served.context_length - prompt_len
    if room <= 0 or (requested is not None and requested > room):
        raise ApiError(
            400,
            f"the prompt ({prompt_len} tokens) plus max_tokens ({requested or 1}) is over the "
            f"model's context of {served.context_length} tokens",
            "context_length_exceeded",
            "messages",
        )
    if requested is not None:
        return requested
    default = (served.meta.generation or {}).get("max_new_tokens") or limit
    return min(default, limit, room)


def new_job(
    body, served, prompt_ids: list[int], max_tokens: int, loop, choice: int = 0
) -> tuple[GenJob, asyncio.Queue]:
    """A job for one choice; with a seed, choice i samples with seed + i (n > 1 differ)."""
    events: asyncio.Queue = asyncio.Queue()
    job = GenJob(
        prompt_ids=prompt_ids,
        max_tokens=max_tokens,
        emit=lambda ev: loop.call_soon_threadsafe(events.put_nowait, ev),
        sampling=Sampling(
            temperature=body.temperature,
            top_p=body.top_p,
            top_k=body.top_k,
            presence_penalty=body.presence_penalty,
            frequency_penalty=body.frequency_penalty,
            seed=None if body.seed is None else body.seed + choice,
        ),
        stop=list(body.stop or []),
        adapter=served.adapter,
    )
    return job, events


def submit(engine, job: GenJob) -> None:
    try:
        engine.submit(job)
    except QueueFull as exc:
        raise ApiError(429, f"server busy: {exc}; retry later", "queue_full") from None


async def final_event(events: asyncio.Queue) -> dict:
    while True:
        ev = await events.get()
        if ev["type"] == "done":
            return ev
        if ev["type"] == "error":
            raise ApiError(500, ev["message"], "generation_failed")


async def run_all(engine, jobs: list[tuple[GenJob, asyncio.Queue]], timeout: float) -> list[dict]:
    """Submit the jobs and wait for all their final events (504 past `timeout`)."""
    for job, _ in jobs:
        submit(engine, job)
    try:
        return await asyncio.wait_for(asyncio.gather(*(final_event(q) for _, q in jobs)), timeout)
    except asyncio.TimeoutError:
        raise ApiError(504, f"generation took longer than {timeout:g}s", "timeout") from None
    finally:
        for job, _ in jobs:
            job.cancelled = True  # no-op for finished jobs; stops the rest


def usage(events: list[dict]) -> dict:
    prompt = sum(e["prompt_tokens"] for e in events)
    completion = sum(e["completion_tokens"] for e in events)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def sse(obj: dict | str) -> str:
    return f"data: {obj if isinstance(obj, str) else json.dumps(obj)}\n\n"


async def stream_events(
    engine,
    job: GenJob,
    events: asyncio.Queue,
    chunk,
    *,
    timeout: float,
    include_usage: bool,
    first: dict | None = None,
    on_done=None,
):
    """SSE lines for one streamed job. `chunk(text, finish)` shapes a chunk; `first` is an
    opening chunk (chat's role); `on_done(event)` records the final event (metrics)."""
    submit(engine, job)
    deadline = time.monotonic() + timeout

    async def lines():
        try:
            if first is not None:
                yield sse(first)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise asyncio.TimeoutError
                ev = await asyncio.wait_for(events.get(), left)
                if ev["type"] == "delta":
                    yield sse(chunk(ev["text"], None))
                elif ev["type"] == "done":
                    if on_done:
                        on_done(ev)
                    yield sse(chunk("", ev["finish"]))
                    if include_usage:
                        yield sse({**chunk(None, None), "choices": [], "usage": usage([ev])})
                    break
                else:
                    yield sse(error_body(500, ev["message"], "generation_failed"))
                    break
        except asyncio.TimeoutError:
            yield sse(error_body(504, f"generation took longer than {timeout:g}s", "timeout"))
        finally:
            job.cancelled = True  # also when the client disconnects mid-stream
        yield sse("[DONE]")

    return lines()


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"
