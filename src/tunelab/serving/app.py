"""The HTTP app: `create_app(registry, settings)` -> a FastAPI app (run it with uvicorn).

Routes: /health (process up), /ready (models loaded, engines running), /metrics
(Prometheus), /v1/models, /v1/chat/completions, /v1/completions (OpenAI-compatible, SSE
streaming), /v1/classify and /v1/entities; /docs and /openapi.json come with FastAPI.
/v1/* needs `Authorization: Bearer KEY` when keys are set. Every error is OpenAI-shaped JSON.
A model served from a registry alias (`champion@sst2`) follows it: alias_watch.py swaps each
new version in while the server answers.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tunelab.serving.auth import authorized
from tunelab.serving.inflight import InFlight
from tunelab.serving.limits import ApiError, BodyLimit, error_response, install_error_handlers
from tunelab.serving.metrics import Metrics


@dataclass
class Settings:
    api_keys: list[str] = field(default_factory=list)
    max_batch_size: int = 32  # rows per forward pass
    max_wait_ms: float = 5.0  # how long a first request waits for company
    max_body_kb: int = 1024
    max_tokens_limit: int = 2048  # largest max_tokens a request may ask for
    max_inputs: int = 256  # texts per /v1/classify or /v1/entities request
    max_queue: int = 256  # waiting requests per model before 429
    timeout_s: float = 120.0  # per request
    # texts per forward pass inside a collected classify batch, grouped by length so little
    # is padding; None: 8 on CPU (compute-bound, padding costs), the whole batch on a GPU
    micro_batch: int | None = None
    # classify/entities batches run at once (threads); None: the cores torch's intra-op
    # threads leave idle on a CPU (batcher.default_workers), 1 on a GPU
    workers: int | None = None
    # for tests and operators, off by default: while this file exists no engine does any
    # work (requests wait, then time out with 504 or find the queue full: 429); delete it
    # and they carry on (`tunelab serve --hold-file`)
    hold_file: str | None = None
    # the prediction log (serving/prediction_log.py): a database URL, None: no log
    db: str | None = None
    log_text: str = "scrubbed"  # none | scrubbed (PII replaced, as `tunelab data`) | raw
    # how often /metrics' drift and estimate gauges are recomputed from the log, seconds
    monitor_every_s: float = 60.0
    # how often a served registry alias (champion@NAME) is read for a promotion or a
    # rollback to swap in (alias_watch.py), seconds; 0: never (served as it was at start)
    reload_every_s: float = 5.0


PATHS = {"/health", "/ready", "/metrics", "/v1/models", "/v1/chat/completions"}
PATHS |= {"/v1/completions", "/v1/classify", "/v1/entities", "/v1/answer"}


class Gate:
    """ASGI middleware: API key check on /v1/*, request counts and latency per path, an id
    per /v1 request (the X-Request-Id header; the prediction log's row id), and the request's
    engine leases, released once its reply is sent to the last byte (inflight.py)."""

    def __init__(self, app, settings: Settings, metrics: Metrics, inflight: InFlight):
        self.app, self.settings, self.metrics = app, settings, metrics
        self.inflight = inflight

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [500]
        request_id = None
        if scope["path"].startswith("/v1/"):
            request_id = uuid.uuid4().hex
            scope.setdefault("state", {})["request_id"] = request_id

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                if request_id is not None:
                    headers = list(message.get("headers") or [])
                    headers.append((b"x-request-id", request_id.encode()))
                    message = {**message, "headers": headers}
            await send(message)

        leases = self.inflight.begin()
        try:
            header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
            if scope["path"].startswith("/v1/") and not authorized(header, self.settings.api_keys):
                reply = error_response(401, "missing or invalid API key", "invalid_api_key")
                return await reply(scope, receive, sending)
            await self.app(scope, receive, sending)
        finally:
            self.inflight.end(leases)
            path = scope["path"] if scope["path"] in PATHS else "other"
            self.metrics.requests.labels(path, str(status[0])).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - start)


def _engines(registry, settings: Settings, metrics: Metrics) -> dict:
    """One engine per model group (models sharing one base share its engine)."""
    return {
        group: _engine(group, members, settings, metrics)
        for group, members in registry.groups().items()
    }


def _engine(group: str, members: list, settings: Settings, metrics: Metrics, embed: bool = True):
    """The started engine of one model group: a decoding loop for decoder-only LMs, a batcher
    otherwise (classifiers, taggers, and encoder-decoders running `model.generate` per batch).
    Also what a swapped-in registry version gets (alias_watch.py), so it runs as at start.
    `embed`: classifiers also return the log's embedding (not a shadow's: it logs none)."""
    from tunelab.serving.batcher import DynamicBatcher, default_workers
    from tunelab.serving.engine import GenerationEngine

    hold = Path(settings.hold_file).exists if settings.hold_file else None
    head = members[0]
    observe = metrics.batch_size.labels(group, head.kind).observe
    common = {"max_batch_size": settings.max_batch_size, "max_wait_ms": settings.max_wait_ms}
    if head.decoder_only:
        engine = GenerationEngine(
            head.model,
            head.tokenizer,
            max_queue=settings.max_queue,
            multi_adapter=any(m.adapter for m in members),  # LoRAs sharing a base
            on_step=observe,
            name=group,
            hold=hold,
            **common,
        )
    else:
        on_gpu = next(head.trained.model.parameters()).device.type != "cpu"
        engine = DynamicBatcher(
            _runner(head, settings.micro_batch, embed=embed and settings.db is not None),
            max_queue=settings.max_queue * 8,
            on_batch=observe,
            name=group,
            workers=settings.workers or default_workers(on_gpu),
            hold=hold,
            **common,
        )
    engine.start()
    metrics.queued.labels(group).set_function(engine.waiting)
    return engine


def _runner(served, micro_batch: int | None, embed: bool = False):
    """The batch function of a classifier, tagger or encoder-decoder: texts (and pairs, or
    decoding settings) -> one dict each (with `embed`, a classifier's also carry the log's
    embedding from the same forward pass: prediction_log.INTERNAL)."""
    trained = served.trained
    if micro_batch is None:
        on_gpu = next(trained.model.parameters()).device.type != "cpu"
        micro_batch = 1_000_000 if on_gpu else 8

    def size(texts):
        return max(1, min(len(texts), micro_batch))

    if served.kind == "generate":  # not decoder-only: an encoder-decoder
        from tunelab.serving.seq2seq import runner

        return runner(served, micro_batch)
    own = served.spec.predict_texts
    if own is not None:  # the task's own predictions (answer: text = question, pair = context)
        return lambda texts, pairs: own(trained, texts, pairs, batch_size=size(texts))
    if served.kind == "entities":
        from tunelab.evaluation.scoring.entities import predict_entities

        return lambda texts, pairs: predict_entities(trained, texts, batch_size=size(texts))
    from tunelab.inference.forward import predict_texts

    return lambda texts, pairs: predict_texts(
        trained, texts, pairs, batch_size=size(texts), embed=embed
    )


def _shadow_info(shadow) -> dict | None:
    if shadow is None:
        return None
    return {"path": shadow.path, "reference": shadow.reference, "version": shadow.version}


def create_app(registry, settings: Settings | None = None):
    """The FastAPI app serving `registry`'s models (loaded: call registry.load() first)."""
    from fastapi import FastAPI
    from fastapi.responses import Response

    settings = settings or Settings()
    if registry.shadows and settings.db is None:
        from tunelab.errors import TunelabError

        raise TunelabError(
            "--shadow writes the shadow's answers beside the prediction log; drop --no-log"
        )
    metrics = Metrics()
    inflight = InFlight()
    state = {"engines": {}, "ready": False}

    def shadow_engine(shadow):
        return _engine(shadow.group, [shadow], settings, metrics, embed=False)

    @asynccontextmanager
    async def lifespan(app):
        if settings.db is not None:
            from tunelab.serving.prediction_log import ServedLog

            app.state.log = ServedLog(settings.db, settings.log_text)
            app.state.log.start()  # StoreError: the database cannot be reached
            metrics.watch_log(app.state.log)
            if settings.monitor_every_s > 0:
                from tunelab.serving.live_monitor import LiveMonitor

                app.state.live = LiveMonitor(
                    registry, settings.db, metrics, settings.monitor_every_s
                )
                app.state.live.start()
        state["engines"] = _engines(registry, settings, metrics)
        if registry.shadows:
            from tunelab.serving.shadow import Shadows

            for shadow in registry.shadows.values():
                state["engines"][shadow.group] = shadow_engine(shadow)
            app.state.shadows = Shadows(
                registry, state["engines"], inflight, metrics, settings.db, settings.timeout_s
            )
            app.state.shadows.start()
        watchers = []
        if settings.reload_every_s > 0:
            from tunelab.serving.alias_watch import AliasWatcher

            if registry.references:
                watchers.append(
                    AliasWatcher(
                        registry,
                        state["engines"],
                        lambda served: _engine(served.group, [served], settings, metrics),
                        inflight,
                        settings.reload_every_s,
                    )
                )
            if registry.shadow_references:
                watchers.append(
                    AliasWatcher(
                        registry,
                        state["engines"],
                        shadow_engine,
                        inflight,
                        settings.reload_every_s,
                        models=registry.shadows,
                        followed=registry.shadow_references,
                        role="shadow",
                    )
                )
            for watcher in watchers:
                watcher.start()
        app.state.watchers = watchers
        state["ready"] = True
        metrics.ready.set(1)
        yield
        state["ready"] = False
        for watcher in watchers:  # first: no swap may start a new engine meanwhile
            await watcher.close()
        if app.state.shadows is not None:  # before the engines: its runs under way finish
            await app.state.shadows.close()
        for engine in state["engines"].values():
            result = engine.close()
            if asyncio.iscoroutine(result):
                await result
        if app.state.live is not None:
            app.state.live.close()
        if app.state.log is not None:  # after the engines: every answered request is queued
            await asyncio.to_thread(app.state.log.close)

    app = FastAPI(
        title="tunelab serve",
        description="OpenAI-compatible generation, classification and entity tagging.",
        lifespan=lifespan,
    )
    app.state.registry, app.state.settings, app.state.metrics = registry, settings, metrics
    app.state.engines = state["engines"]
    app.state.log = app.state.live = app.state.shadows = None
    app.state.watchers = []
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_kb * 1024)
    app.add_middleware(Gate, settings=settings, metrics=metrics, inflight=inflight)

    def model_for(name: str, kind: str):
        if not state["ready"]:
            raise ApiError(503, "models are still loading", "not_ready")
        served = registry.get(name)
        if served is None:
            known = ", ".join(registry.models)
            raise ApiError(
                404,
                f"model '{name}' is not served here (served: {known})",
                "model_not_found",
                "model",
            )
        if served.kind != kind:
            uses = {
                "generate": "/v1/chat/completions or /v1/completions"
                if served.decoder_only
                else "/v1/completions",
                "classify": "/v1/classify",
                "entities": "/v1/entities",
                "answer": "/v1/answer",
            }
            raise ApiError(
                400,
                f"model '{name}' is a {served.task} model; use {uses[served.kind]}",
                "wrong_endpoint",
                "model",
            )
        engine = state["engines"][served.group]
        inflight.hold(engine)  # released by the Gate once the reply is sent (inflight.py)
        return served, engine

    @app.get("/health", tags=["ops"])
    async def health():
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"])
    async def ready():
        if not state["ready"]:
            return error_response(503, "models are still loading", "not_ready")
        return {"status": "ready", "models": list(registry.models)}

    @app.get("/metrics", tags=["ops"])
    async def prometheus():
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/v1/models", tags=["openai"])
    async def models():
        data = [
            {
                "id": m.name,
                "object": "model",
                "created": m.created,
                "owned_by": "tunelab",
                "task": m.task,
                # the registered version answering now (a followed alias moves it), or null
                "version": m.version,
                "reference": m.reference,
                # what answers beside it, unseen (--shadow), or null
                "shadow": _shadow_info(registry.shadows.get(m.name)),
            }
            for m in registry.models.values()
        ]
        return {"object": "list", "data": data}

    from tunelab.serving.routes import add_routes

    add_routes(app, model_for, settings, metrics)
    from tunelab.serving.feedback_route import add_feedback_route

    add_feedback_route(app)
    from tunelab.serving.openapi import install_openapi

    install_openapi(app, registry)  # the truthful /openapi.json (serving/openapi.py)
    return app
