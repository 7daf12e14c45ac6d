"""API keys: `Authorization: Bearer KEY`, compared in constant time.

Keys come from `--api-key` (repeatable) and the TUNELAB_API_KEYS environment variable
(comma-separated). With no key configured the API is open (fine on 127.0.0.1; `tunelab
serve` warns when it listens elsewhere without one).
"""

from __future__ import annotations

import hmac
import os

ENV = "TUNELAB_API_KEYS"


def api_keys(given: list[str] | None = None, environ: dict | None = None) -> list[str]:
    """Keys from the flags and the environment, without blanks or repeats."""
    environ = os.environ if environ is None else environ
    keys = list(given or []) + environ.get(ENV, "").split(",")
    return list(dict.fromkeys(k.strip() for k in keys if k.strip()))


def authorized(header: str | None, keys: list[str]) -> bool:
    """Whether an Authorization header carries one of `keys`. Every key is compared, each
    with hmac.compare_digest, so the time taken tells nothing about how close a guess was."""
    if not keys:
        return True
    scheme, _, token = (header or "").partition(" ")
    token = token.strip().encode()
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(token, key.encode())
    return ok and scheme.lower() == "bearer"
