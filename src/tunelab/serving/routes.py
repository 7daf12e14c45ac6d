"""The /v1 work routes: chat and text completions, classification, entities."""

from __future__ import annotations

import asyncio
import time

from fastapi import Request  # at module level: FastAPI resolves the handlers' annotations here

from tunelab.serving import generate as gen
from tunelab.serving import seq2seq as s2s
from tunelab.serving.engine import QueueFull
from tunelab.serving.limits import ApiError
from tunelab.serving.prediction_log import row_ids, split_internal
from tunelab.serving.schemas import (
    AnswerRequest,
    ChatRequest,
    ClassifyRequest,
    CompletionRequest,
    EntitiesRequest,
)


def _texts(value, field: str, limit: int) -> list[str]:
    texts = [value] if isinstance(value, str) else list(value)
    if len(texts) > limit:
        raise ApiError(
            400, f"{field}: {len(texts)} texts, over the limit of {limit} per request", param=field
        )
    return texts


def add_routes(app, model_for, settings, metrics) -> None:
    from fastapi.responses import StreamingResponse

    def record(request, served, texts, outputs, start, **fields) -> list[str]:
        """Log one row per input (when the server logs) and return the inputs' ids: the
        request's id (X-Request-Id) for a single input, a new one each in a batch."""
        request_id = request.state.request_id
        served_log = app.state.log
        if served_log is None:
            return row_ids(request_id, len(texts))
        latency_ms = (time.perf_counter() - start) * 1000
        return served_log.add(served, request_id, texts, outputs, latency_ms, **fields)

    def shadow(served, texts, pairs, ids, results) -> None:
        """Hand the answered inputs to the served model's shadow, if it has one (shadow.py:
        it runs after this reply, which carries the served model's outputs only)."""
        if app.state.shadows is not None:
            app.state.shadows.follow(served, texts, pairs, ids, results)

    async def logged(request, served, texts, work, meta, pairs=None, prompt_ids=None):
        """`await work` with its failure (429, 504, a generation error) logged with its status."""
        start = time.perf_counter()
        try:
            return await work, start
        except ApiError as exc:
            record(
                request,
                served,
                texts,
                None,
                start,
                pairs=pairs,
                prompt_ids=prompt_ids,
                meta=meta,
                status=exc.status,
                error=exc.message,
            )
            raise

    def done_outputs(events: list[dict]) -> list[dict]:
        keys = ("text", "finish", "prompt_tokens", "completion_tokens", "nll")
        return [{k: ev.get(k) for k in keys} for ev in events]

    def count(model: str, events: list[dict]) -> None:
        metrics.tokens.labels(model).inc(sum(e["completion_tokens"] for e in events))
        metrics.prompt_tokens.labels(model).inc(sum(e["prompt_tokens"] for e in events))

    def stream_done(request, served, body, prompt_text: str, prompt_ids: list[int]):
        """The final event's callback of a streamed reply: token counts and the log row."""
        start = time.perf_counter()

        def finished(ev):
            count(body.model, [ev])
            record(request, served, [prompt_text], done_outputs([ev]), start,
                   prompt_ids=[prompt_ids], meta=body.metadata)  # fmt: skip

        return finished

    async def generate_all(request, served, body, engine, jobs, texts, prompt_ids):
        """Run a non-streamed request's jobs: (their final events, the rows' ids), logged."""
        work = gen.run_all(engine, jobs, settings.timeout_s)
        done, start = await logged(
            request, served, texts, work, body.metadata, prompt_ids=prompt_ids
        )
        count(body.model, done)
        ids = record(request, served, texts, done_outputs(done), start,
                     prompt_ids=prompt_ids, meta=body.metadata)  # fmt: skip
        return done, ids

    @app.post("/v1/chat/completions", tags=["openai"])
    async def chat(body: ChatRequest, request: Request):
        served, engine = model_for(body.model, "generate")
        if not served.decoder_only:
            raise ApiError(
                400,
                f"model '{body.model}' is a {served.task} model; use /v1/completions",
                "wrong_endpoint",
                "model",
            )
        if body.logprobs:
            raise ApiError(400, "logprobs are not supported", param="logprobs")
        if body.stream and body.n > 1:
            raise ApiError(400, "n > 1 cannot be streamed", param="n")
        prompt = gen.chat_prompt(served, body.messages)
        prompt_text = served.tokenizer.decode(prompt)
        budget = gen.token_budget(
            served,
            body.max_completion_tokens or body.max_tokens,
            len(prompt),
            settings.max_tokens_limit,
        )
        loop = asyncio.get_running_loop()
        rid, created = gen.new_id("chatcmpl"), int(time.time())
        if body.stream:
            job, events = gen.new_job(body, served, prompt, budget, loop)

            def chunk(text, finish):
                delta = {} if text is None or finish else {"content": text}
                choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                return {
                    "id": rid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": body.model,
                    "choices": [choice],
                }

            first = chunk(None, None)
            first["choices"][0]["delta"] = {"role": "assistant", "content": ""}
            finished = stream_done(request, served, body, prompt_text, prompt)

            lines = await gen.stream_events(
                engine,
                job,
                events,
                chunk,
                timeout=settings.timeout_s,
                include_usage=bool(body.stream_options and body.stream_options.include_usage),
                first=first,
                on_done=finished,
            )
            return StreamingResponse(lines, media_type="text/event-stream")
        jobs = [gen.new_job(body, served, prompt, budget, loop, i) for i in range(body.n)]
        done, ids = await generate_all(
            request, served, body, engine, jobs, [prompt_text] * body.n, [prompt] * body.n
        )
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": ev["text"]},
                "logprobs": None,
                "finish_reason": ev["finish"],
                **({"id": ids[i]} if len(ids) > 1 else {}),
            }
            for i, ev in enumerate(done)
        ]
        usage = gen.usage(done)
        usage["prompt_tokens"] = len(prompt)  # one prompt, however many choices
        usage["total_tokens"] = len(prompt) + usage["completion_tokens"]
        return {
            "id": rid,
            "object": "chat.completion",
            "created": created,
            "model": body.model,
            "choices": choices,
            "usage": usage,
        }

    @app.post("/v1/completions", tags=["openai"])
    async def completions(body: CompletionRequest, request: Request):
        served, engine = model_for(body.model, "generate")
        if body.logprobs:
            raise ApiError(400, "logprobs are not supported", param="logprobs")
        prompts = _texts(body.prompt, "prompt", settings.max_inputs)
        if not served.decoder_only:  # an encoder-decoder: the request batcher (seq2seq.py)
            texts = [p for p in prompts for _ in range(body.n)]
            reply, start = await logged(
                request,
                served,
                texts,
                s2s.completions(served, engine, body, prompts, settings),
                body.metadata,
            )
            ids = record(
                request,
                served,
                texts,
                [{"text": c["text"], "finish": c["finish_reason"]} for c in reply["choices"]],
                start,
                meta=body.metadata,
            )
            if len(ids) > 1:
                for choice, row_id in zip(reply["choices"], ids):
                    choice["id"] = row_id
            usage = reply["usage"]
            metrics.tokens.labels(body.model).inc(usage["completion_tokens"])
            metrics.prompt_tokens.labels(body.model).inc(usage["prompt_tokens"])
            return reply
        if body.stream and len(prompts) * body.n > 1:
            raise ApiError(400, "only one prompt and n=1 can be streamed", param="prompt")
        tok = served.tokenizer
        encoded = [tok(p)["input_ids"] for p in prompts]
        budgets = [
            gen.token_budget(served, body.max_tokens, len(ids), settings.max_tokens_limit)
            for ids in encoded
        ]
        loop = asyncio.get_running_loop()
        rid, created = gen.new_id("cmpl"), int(time.time())
        if body.stream:
            job, events = gen.new_job(body, served, encoded[0], budgets[0], loop)
            finished = stream_done(request, served, body, prompts[0], encoded[0])

            def chunk(text, finish):
                choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
                return {
                    "id": rid,
                    "object": "text_completion",
                    "created": created,
                    "model": body.model,
                    "choices": [choice],
                }

            lines = await gen.stream_events(
                engine,
                job,
                events,
                chunk,
                timeout=settings.timeout_s,
                include_usage=bool(body.stream_options and body.stream_options.include_usage),
                first=chunk(prompts[0], None) if body.echo else None,
                on_done=finished,
            )
            return StreamingResponse(lines, media_type="text/event-stream")
        jobs = [
            gen.new_job(body, served, ids, budget, loop, i)
            for ids, budget in zip(encoded, budgets)
            for i in range(body.n)
        ]
        texts = [p for p in prompts for _ in range(body.n)]
        prompt_ids = [ids for ids in encoded for _ in range(body.n)]
        done, ids = await generate_all(request, served, body, engine, jobs, texts, prompt_ids)
        choices = [
            {
                "index": i,
                "text": (prompts[i // body.n] if body.echo else "") + ev["text"],
                "logprobs": None,
                "finish_reason": ev["finish"],
                **({"id": ids[i]} if len(ids) > 1 else {}),
            }
            for i, ev in enumerate(done)
        ]
        return {
            "id": rid,
            "object": "text_completion",
            "created": created,
            "model": body.model,
            "choices": choices,
            "usage": gen.usage(done),
        }

    async def batched(engine, texts, pairs=None):
        try:
            return await asyncio.wait_for(engine.submit(texts, pairs), settings.timeout_s)
        except QueueFull as exc:
            raise ApiError(429, f"server busy: {exc}; retry later", "queue_full") from None
        except asyncio.TimeoutError:
            raise ApiError(
                504, f"request took longer than {settings.timeout_s:g}s", "timeout"
            ) from None

    @app.post("/v1/classify", tags=["tunelab"])
    async def classify(body: ClassifyRequest, request: Request):
        """Labels and scores per input text (as `tunelab predict`), batched with other requests."""
        served, engine = model_for(body.model, "classify")
        texts = _texts(body.input, "input", settings.max_inputs)
        pairs = None if body.pair is None else _texts(body.pair, "pair", settings.max_inputs)
        if pairs is not None and len(pairs) != len(texts):
            raise ApiError(
                400,
                f"pair: {len(pairs)} pairs for {len(texts)} inputs; give one each",
                param="pair",
            )
        results, start = await logged(
            request, served, texts, batched(engine, texts, pairs), body.metadata, pairs=pairs
        )
        extras = split_internal(results)
        ids = record(
            request, served, texts, results, start, pairs=pairs, extras=extras, meta=body.metadata
        )
        shadow(served, texts, pairs, ids, results)
        return {
            "object": "list",
            "model": body.model,
            "data": [{"index": i, "id": ids[i], **r} for i, r in enumerate(results)],
        }

    @app.post("/v1/entities", tags=["tunelab"])
    async def entities(body: EntitiesRequest, request: Request):
        """Entities with character spans per input text (as `tunelab predict` on a tagger)."""
        served, engine = model_for(body.model, "entities")
        texts = _texts(body.input, "input", settings.max_inputs)
        results, start = await logged(request, served, texts, batched(engine, texts), body.metadata)
        ids = record(request, served, texts, results, start, meta=body.metadata)
        shadow(served, texts, None, ids, results)
        return {
            "object": "list",
            "model": body.model,
            "data": [{"index": i, "id": ids[i], **r} for i, r in enumerate(results)],
        }

    @app.post("/v1/answer", tags=["tunelab"])
    async def answer(body: AnswerRequest, request: Request):
        """The answer span of each question in its context (as `tunelab predict` on a
        question answerer): {answer, start, end, score, probability}, `context[start:end] ==
        answer`; lists of questions and contexts get a list back."""
        name = body.model
        if name is None:
            served_names = list(app.state.registry.models)
            if len(served_names) != 1:
                raise ApiError(400, "model: several models are served; name one", param="model")
            name = served_names[0]
        served, engine = model_for(name, "answer")
        questions = _texts(body.question, "question", settings.max_inputs)
        contexts = _texts(body.context, "context", settings.max_inputs)
        if len(contexts) != len(questions):
            raise ApiError(
                400,
                f"context: {len(contexts)} contexts for {len(questions)} questions; give one each",
                param="context",
            )
        results, start = await logged(
            request,
            served,
            questions,
            batched(engine, questions, contexts),
            body.metadata,
            pairs=contexts,
        )
        ids = record(request, served, questions, results, start, pairs=contexts, meta=body.metadata)
        shadow(served, questions, contexts, ids, results)
        if isinstance(body.question, str):
            return {"model": name, "id": ids[0], **results[0]}
        return {
            "object": "list",
            "model": name,
            "data": [{"index": i, "id": ids[i], **r} for i, r in enumerate(results)],
        }
