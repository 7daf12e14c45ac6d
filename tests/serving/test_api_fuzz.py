"""A property-based API fuzzer (schemathesis + hypothesis) against a real `tunelab serve`
process: every operation of its live /openapi.json gets valid requests (POST routes: invalid
bodies too); none may be answered with a 5xx, and every reply must conform to the document
(status declared, media type declared, body valid against the declared schema, declared
headers present).

Bounded and deterministic: 25 examples per operation, derandomized, no deadline.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings, strategies
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from serving_helpers import running_server

KEY = "fuzz-key"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture(scope="module")
def server(tiny_model, toy_data, tiny_llama, tmp_path_factory):
    """A tiny trained classifier and the tiny Llama in one server, with small limits so
    fuzzed requests stay cheap (few inputs, few tokens) and limits are hit, not skirted."""
    from conftest import tiny_config

    from tunelab import api

    root = tmp_path_factory.mktemp("fuzz-models")
    api.train(tiny_config(tiny_model, toy_data, root / "clf", train={"epochs": 1}))
    args = [f"clf={root / 'clf'}", f"tiny={tiny_llama}", "--api-key", KEY]
    args += ["--max-body-kb", "8", "--max-tokens-limit", "8", "--max-inputs", "8"]
    args += ["--max-wait-ms", "2"]  # logging on (running_server's sqlite): feedback looks ids up
    log = root / "server.log"
    with running_server(args, log) as url:
        yield url, log


@pytest.fixture(scope="module")
def api_schema(server):
    url, _ = server
    return schemathesis.openapi.from_url(f"{url}/openapi.json")


# every operation of the live document (test_the_fuzzed_operations_are_all_there keeps this
# list equal to it, so a new route is fuzzed too)
OPERATIONS = [
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("GET", "/v1/models"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/completions"),
    ("POST", "/v1/classify"),
    ("POST", "/v1/entities"),
    ("POST", "/v1/answer"),
    ("POST", "/v1/feedback"),
]


def test_the_fuzzed_operations_are_all_there(api_schema):
    live = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert live == {tuple(op.values) if hasattr(op, "values") else op for op in OPERATIONS}


@pytest.mark.parametrize("method, path", OPERATIONS, ids=str)
def test_every_reply_is_declared_and_no_server_error(api_schema, server, method, path):
    from hypothesis import given

    _, log = server
    operation = api_schema[path][method]
    strategy = operation.as_strategy(GenerationMode.POSITIVE)  # valid requests
    if method == "POST":  # and invalid bodies: wrong types, missing fields, out of range
        strategy = strategies.one_of(strategy, operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=strategy)
    @settings(
        max_examples=25,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def fuzz(case):
        case.call_and_validate(
            headers={"Authorization": f"Bearer {KEY}"}, checks=CHECKS, timeout=60
        )

    try:
        fuzz()
    except Exception:
        print(log.read_text()[-4000:])  # the server's traceback of a 500, if any
        raise


def test_a_tiny_positive_temperature_is_no_server_error(server):
    """Found by the fuzzer: temperature 2.2e-308 is valid (> 0) but rounds to 0 in float32,
    so logits / temperature was inf, the probabilities NaN, and the reply a 500; sampling
    now treats temperatures below GREEDY_BELOW as greedy."""
    import httpx

    url, _ = server
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}
    body |= {"temperature": 2.2250738585072014e-308, "max_tokens": 2}
    reply = httpx.post(
        f"{url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
