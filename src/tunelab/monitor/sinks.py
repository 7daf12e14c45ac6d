"""Where alerts go: stderr (one line each) and a webhook (POST {"alerts": [...]}, retried).

A sink never raises to the monitor: an alert that cannot be delivered is logged and
reported as a False return, so a dead webhook cannot stop the report, the exit code or the
other sinks.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import Protocol, TextIO

log = logging.getLogger(__name__)


class Sink(Protocol):
    def send(self, alerts: Sequence[dict]) -> bool: ...


class StderrSink:
    """One line per alert: `alert: <message>` on stderr (or `stream`)."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream

    def send(self, alerts: Sequence[dict]) -> bool:
        stream = self.stream or sys.stderr
        try:
            for alert in alerts:
                stream.write(f"alert: {alert.get('message') or json.dumps(alert)}\n")
            stream.flush()
            return True
        except Exception as e:  # noqa: BLE001 - a sink never raises
            log.warning("could not write alerts to stderr: %s", e)
            return False


class WebhookSink:
    """POST {"alerts": [...]} as JSON to `url`.

    A connection error, a timeout or a 5xx answer is retried up to `retries` more times,
    waiting backoff, 2 backoff, 4 backoff ... seconds; a 4xx is the receiver refusing the
    payload, and is not retried. Gives up with a logged warning and returns False.
    """

    def __init__(self, url: str, retries: int = 3, timeout: float = 5.0, backoff: float = 0.5):
        self.url, self.retries, self.timeout, self.backoff = url, retries, timeout, backoff
        self.attempts = 0

    def send(self, alerts: Sequence[dict]) -> bool:
        import httpx

        payload = {"alerts": list(alerts)}
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            self.attempts += 1
            try:
                resp = httpx.post(self.url, json=payload, timeout=self.timeout)
            except httpx.HTTPError as e:
                log.warning("webhook %s attempt %d: %s", self.url, attempt + 1, e)
                continue
            except Exception as e:  # noqa: BLE001 - bad URL, unserialisable alert: no retry
                log.warning("webhook %s: %s", self.url, e)
                return False
            if resp.status_code < 300:
                return True
            log.warning("webhook %s attempt %d: HTTP %d", self.url, attempt + 1, resp.status_code)
            if resp.status_code < 500:
                return False
        log.warning("webhook %s: giving up after %d attempts", self.url, self.retries + 1)
        return False


def send(alerts: Sequence[dict], sinks: Sequence[Sink]) -> bool:
    """Deliver `alerts` to every sink (nothing is sent when there are none); True when
    every sink succeeded."""
    if not alerts:
        return True
    ok = True
    for sink in sinks:
        try:
            ok = sink.send(alerts) and ok
        except Exception as e:  # noqa: BLE001 - a third-party sink that raises anyway
            log.warning("alert sink %r failed: %s", sink, e)
            ok = False
    return ok
