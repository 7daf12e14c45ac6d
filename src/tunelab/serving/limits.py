"""Request limits and error replies in OpenAI's shape: {"error": {"message", "type", "code"}}.

Every error a client sees is one of these JSON objects with a 4xx/5xx status; unexpected
exceptions are logged here and answered with a bare 500, never a traceback.
"""

from __future__ import annotations

import json
import logging

from starlette.exceptions import HTTPException

log = logging.getLogger("tunelab.serving")

TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "service_unavailable",
    504: "timeout",
}


class ApiError(HTTPException):
    """An error reply: raise it anywhere in a handler. (An HTTPException, so FastAPI lets it
    through while it reads a body: the chunked-body limit raises it from there.)"""

    def __init__(
        self, status: int, message: str, code: str | None = None, param: str | None = None
    ):
        super().__init__(status, message)
        self.status, self.message, self.code, self.param = status, message, code, param


def error_body(
    status: int, message: str, code: str | None = None, param: str | None = None
) -> dict:
    return {
        "error": {
            "message": message,
            "type": TYPES.get(status, "invalid_request_error"),
            "param": param,
            "code": code,
        }
    }


def error_response(status: int, message: str, code: str | None = None, param: str | None = None):
    from fastapi.responses import JSONResponse

    return JSONResponse(error_body(status, message, code, param), status_code=status)


def _validation_message(errors: list[dict]) -> tuple[int, str, str | None]:
    """(status, message, param) of a FastAPI validation error: 400 for a body that is not
    JSON at all, 422 for JSON with missing fields or wrong types."""
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "request body is not valid JSON", None
    parts, param = [], None
    for e in errors[:5]:
        loc = [str(x) for x in e.get("loc", ()) if x != "body"]
        param = param or ".".join(loc) or None
        parts.append(f"{'.'.join(loc) or 'body'}: {e.get('msg', 'invalid')}")
    return 422, "; ".join(parts), param


def install_error_handlers(app) -> None:
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    @app.exception_handler(ApiError)
    async def _api_error(request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.code, exc.param)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError):
        status, message, param = _validation_message(exc.errors())
        return error_response(status, message, "invalid_json" if status == 400 else None, param)

    @app.exception_handler(HTTPException)
    async def _http(request, exc: HTTPException):
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request, exc: Exception):
        log.exception("unhandled error on %s", request.url.path)
        return error_response(500, "internal server error")


class BodyLimit:
    """ASGI middleware: 413 for a request body over `max_bytes`, whether announced by
    Content-Length or sent in chunks, before the app parses any of it."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await self._reject(send)
        seen = 0

        async def limited():  # chunked bodies: count as they come
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise ApiError(413, self._message(), "body_too_large")
            return message

        await self.app(scope, limited, send)

    def _message(self) -> str:
        return f"request body over the limit of {self.max_bytes // 1024} KB"

    async def _reject(self, send):
        body = json.dumps(error_body(413, self._message(), "body_too_large")).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
