"""Alert sinks: stderr lines, and a webhook retried against a real local HTTP receiver."""

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tunelab.monitor.sinks import StderrSink, WebhookSink, send

ALERTS = [{"rule": "r", "stat": "embedding.mmd_p", "message": "m window 0: drift"}]


@pytest.fixture
def receiver():
    """A local server that answers 503 to its first `fail` POSTs and 200 after."""
    state = {"fail": 1, "bodies": [], "codes": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            code = 503 if state["fail"] > 0 else 200
            state["fail"] -= 1
            state["bodies"].append(json.loads(body))
            state["codes"].append(code)
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield state
    server.shutdown()
    server.server_close()


def test_webhook_retries_after_503_and_delivers(receiver):
    sink = WebhookSink(receiver["url"], retries=3, timeout=5, backoff=0.01)
    assert sink.send(ALERTS) is True
    assert receiver["codes"] == [503, 200]
    assert receiver["bodies"][-1] == {"alerts": ALERTS}


def test_webhook_gives_up_without_raising(receiver):
    receiver["fail"] = 100
    sink = WebhookSink(receiver["url"], retries=2, backoff=0.01)
    assert sink.send(ALERTS) is False
    assert receiver["codes"] == [503, 503, 503]


def test_webhook_unreachable_returns_false():
    sink = WebhookSink("http://127.0.0.1:9/none", retries=1, timeout=1, backoff=0.01)
    assert sink.send(ALERTS) is False and sink.attempts == 2


def test_stderr_sink_and_send():
    buf = io.StringIO()
    assert send(ALERTS * 2, [StderrSink(buf)]) is True
    assert buf.getvalue() == "alert: m window 0: drift\n" * 2
    buf2 = io.StringIO()
    assert send([], [StderrSink(buf2)]) is True and buf2.getvalue() == ""
