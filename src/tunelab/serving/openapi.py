"""A truthful /openapi.json: the statuses each route really answers, with their bodies.

FastAPI's own document lists 200 and 422 (as its `HTTPValidationError`) for every route and
JSON for /metrics. The server answers more: the API key check (401), the body limit (413),
unknown models (404), full queues (429), loading (503), timeouts (504), all as the OpenAI-
shaped error body of limits.error_body; 422s are rewritten to that body too. /metrics is
Prometheus' text format, streams are server-sent events, /v1 replies carry X-Request-Id, and
`model` can only be one of the served names. `install_openapi(app, registry)` makes
`app.openapi()` say so, so generated clients and API fuzzers see the real contract.
"""

from __future__ import annotations

import copy

from tunelab.serving.limits import TYPES

ERROR = {"$ref": "#/components/schemas/ErrorResponse"}
ERROR_SCHEMA = {
    "title": "ErrorResponse",
    "description": "Every error reply (OpenAI's shape).",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string", "enum": sorted(set(TYPES.values()))},
                "param": {"type": ["string", "null"], "description": "the field at fault"},
                "code": {"type": ["string", "null"], "description": "e.g. model_not_found"},
            },
        }
    },
}
REQUEST_ID = {
    "X-Request-Id": {
        "description": "this request's id (a uuid4 hex), the prediction log's row id of a "
        "single input; batch replies carry one `id` per input in the body",
        "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "required": True,
    }
}
WHY = {
    400: "bad request: body not JSON, wrong endpoint for the model, too many inputs, "
    "an unsupported option",
    401: "missing or invalid API key (when the server has keys)",
    404: "the model is not served here",
    413: "request body over --max-body-kb",
    422: "a field is missing or has the wrong type or value",
    429: "the model's queue is full; retry later",
    503: "models are still loading",
    504: "the request took longer than the server's timeout",
}
WORK_ERRORS = (400, 401, 404, 413, 422, 429, 503, 504)
# routes that answer other errors than the model routes, with what those mean there
ROUTE_ERRORS = {
    "/v1/feedback": {
        400: WHY[400],
        401: WHY[401],
        404: "no logged input has this request_id",
        413: WHY[413],
        422: "a field has the wrong type, or the answer does not fit the logged prediction "
        "(a label the model does not have, entities for a classifier)",
        503: "the server keeps no prediction log (--no-log), or its database cannot be reached",
    }
}
# which served models each work route answers for: (kind, decoder-only required)
ROUTE_KINDS = {
    "/v1/chat/completions": ("generate", True),
    "/v1/completions": ("generate", False),
    "/v1/classify": ("classify", False),
    "/v1/entities": ("entities", False),
    "/v1/answer": ("answer", False),
}
STREAMING = {"/v1/chat/completions", "/v1/completions"}


def install_openapi(app, registry) -> None:
    """Make `app.openapi()` (and so /openapi.json and /docs) the truthful document of
    `registry`'s server: built once on first use, then cached on the app as FastAPI does."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = truthful(doc, served_names(registry))
        return app.openapi_schema

    app.openapi = openapi


def served_names(registry) -> dict[str, list[str]]:
    """Route path -> the served model names that route answers for (all names when none
    fits: any name is then answered with 400 wrong_endpoint, as the document says)."""
    models = registry.models
    out = {}
    for path, (kind, decoder_only) in ROUTE_KINDS.items():
        fit = [
            name
            for name, m in models.items()
            if m.kind == kind and (m.decoder_only or not decoder_only)
        ]
        out[path] = fit or list(models)
    return out


def _error(status: int, why: str | None = None) -> dict:
    return {
        "description": why or WHY[status],
        "content": {"application/json": {"schema": ERROR}},
    }


def truthful(doc: dict, names: dict[str, list[str]]) -> dict:
    """FastAPI's document `doc` with the real statuses, media types and model names."""
    doc = copy.deepcopy(doc)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorResponse"] = ERROR_SCHEMA
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            responses = op.setdefault("responses", {})
            if path.startswith("/v1/"):
                codes = WORK_ERRORS if method == "post" else (401,)
                whys = ROUTE_ERRORS.get(path, {s: WHY[s] for s in codes})
                for status, why in whys.items():
                    responses[str(status)] = _error(status, why)
                for response in responses.values():
                    response["headers"] = copy.deepcopy(REQUEST_ID)
            if path in STREAMING:
                responses["200"].setdefault("content", {})["text/event-stream"] = {
                    "schema": {
                        "type": "string",
                        "description": "`data: {chunk}` lines, then `data: [DONE]`",
                    }
                }
            if path in names and "requestBody" in op:
                _enumerate_models(doc, op, names[path])
    ops = doc.get("paths", {})
    if "/metrics" in ops:
        ops["/metrics"]["get"]["responses"]["200"] = {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    if "/ready" in ops:
        ready = ops["/ready"]["get"]["responses"]
        ready["200"]["content"] = {"application/json": {"schema": READY}}
        ready["503"] = _error(503)
    if "/health" in ops:
        ops["/health"]["get"]["responses"]["200"]["content"] = {
            "application/json": {"schema": HEALTH}
        }
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return doc


READY = {
    "type": "object",
    "required": ["status", "models"],
    "properties": {
        "status": {"const": "ready"},
        "models": {"type": "array", "items": {"type": "string"}},
    },
}
HEALTH = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"const": "ok"}},
}


def _enumerate_models(doc: dict, op: dict, names: list[str]) -> None:
    """Give the `model` property of `op`'s request body an enum of `names` (its string
    branch, when it may also be null: /v1/answer's `model` may be left out)."""
    content = op["requestBody"].get("content", {}).get("application/json", {})
    ref = content.get("schema", {}).get("$ref", "")
    if not ref.startswith("#/components/schemas/"):
        return
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    model = schema.get("properties", {}).get("model")
    if model is None:
        return
    for branch in model.get("anyOf", [model]):
        if branch.get("type") == "string":
            branch["enum"] = list(names)
