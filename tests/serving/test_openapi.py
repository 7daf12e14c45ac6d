"""/openapi.json tells the truth: every status it declares is one the server really answers,
with a body that validates against the declared schema, and vice versa for the media types
and the served model names. In-process (TestClient) on a tiny trained classifier."""

from __future__ import annotations

import json

import jsonschema_rs
import pytest
from conftest import tiny_config
from fastapi.testclient import TestClient

KEY = "openapi-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def registry(tiny_model, toy_data, tmp_path_factory):
    from tunelab import api
    from tunelab.serving.registry import Registry

    root = tmp_path_factory.mktemp("openapi-models")
    api.train(tiny_config(tiny_model, toy_data, root / "clf", train={"epochs": 1}))
    reg = Registry([f"clf={root / 'clf'}", f"clf2={root / 'clf'}"])
    reg.load()
    return reg


@pytest.fixture(scope="module")
def hold(tmp_path_factory):
    return tmp_path_factory.mktemp("openapi-hold") / "hold"


@pytest.fixture(scope="module")
def app(registry, hold):
    from tunelab.serving.app import Settings, create_app

    settings = Settings(
        api_keys=[KEY],
        max_body_kb=4,
        max_inputs=16,
        max_queue=1,  # the classify batcher takes 8 texts at most: 9 get a 429
        timeout_s=0.5,
        hold_file=str(hold),
        monitor_every_s=0,
    )
    return create_app(registry, settings)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def doc(client):
    return client.get("/openapi.json").json()


def declared(doc: dict, path: str, method: str, status: int) -> dict:
    responses = doc["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} does not declare {status}"
    return responses[str(status)]


def conforms(doc: dict, response, path: str, method: str = "post") -> None:
    """`response`'s status is declared for the route, its media type too, and its JSON body
    validates against the declared schema (refs resolved in the document's components)."""
    spec = declared(doc, path, method, response.status_code)
    media = response.headers["content-type"].split(";")[0]
    assert media in spec["content"], (media, list(spec["content"]))
    schema = {**spec["content"][media]["schema"], "components": doc["components"]}
    jsonschema_rs.validator_for(schema).validate(response.json())
    for header in spec.get("headers", {}):
        assert header.lower() in response.headers


def post(client, path: str, body, headers=AUTH):
    content = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(
        path, content=content, headers={"content-type": "application/json", **headers}
    )


def test_document_declares_every_status_and_the_error_schema(doc):
    assert "ErrorResponse" in doc["components"]["schemas"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]  # 422s are ErrorResponse
    for path in ("/v1/classify", "/v1/entities", "/v1/answer", "/v1/chat/completions"):
        for status in (400, 401, 404, 413, 422, 429, 503, 504):
            body = declared(doc, path, "post", status)["content"]["application/json"]
            assert body["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
        assert "X-Request-Id" in declared(doc, path, "post", 200)["headers"]
    feedback = doc["paths"]["/v1/feedback"]["post"]["responses"]
    assert set(feedback) == {"201", "400", "401", "404", "413", "422", "503"}
    assert "request_id" in feedback["404"]["description"]
    assert "401" in doc["paths"]["/v1/models"]["get"]["responses"]
    assert set(doc["paths"]["/ready"]["get"]["responses"]) == {"200", "503"}
    streamed = declared(doc, "/v1/chat/completions", "post", 200)["content"]
    assert {"application/json", "text/event-stream"} <= set(streamed)
    assert "text/event-stream" not in declared(doc, "/v1/classify", "post", 200)["content"]


def test_metrics_are_declared_and_served_as_text(client, doc):
    content = declared(doc, "/metrics", "get", 200)["content"]
    assert list(content) == ["text/plain"]
    reply = client.get("/metrics")
    assert reply.headers["content-type"].startswith("text/plain")
    assert "tunelab_ready 1.0" in reply.text


def test_model_enum_is_the_served_names_that_fit(doc):
    schemas = doc["components"]["schemas"]
    assert schemas["ClassifyRequest"]["properties"]["model"]["enum"] == ["clf", "clf2"]
    assert schemas["EntitiesRequest"]["properties"]["model"]["enum"] == ["clf", "clf2"]  # none fit
    answer = schemas["AnswerRequest"]["properties"]["model"]["anyOf"]
    assert [b["enum"] for b in answer if b.get("type") == "string"] == [["clf", "clf2"]]


def test_success_conforms(client, doc):
    reply = post(client, "/v1/classify", {"model": "clf", "input": ["good", "bad"]})
    assert reply.status_code == 200
    conforms(doc, reply, "/v1/classify")
    assert len(reply.headers["x-request-id"]) == 32
    for path in ("/health", "/ready", "/v1/models"):
        reply = client.get(path, headers=AUTH)
        assert reply.status_code == 200
        conforms(doc, reply, path, "get")


@pytest.mark.parametrize(
    "body, headers, status, code",
    [
        ({"model": "clf", "input": "x"}, {}, 401, "invalid_api_key"),
        ({"model": "nope", "input": "x"}, AUTH, 404, "model_not_found"),
        ({"model": "clf", "input": "x" * 5000}, AUTH, 413, "body_too_large"),
        ({"model": "clf", "input": 7}, AUTH, 422, None),
        ({"model": "clf", "input": ["x"] * 17}, AUTH, 400, None),
        ("{not json", AUTH, 400, "invalid_json"),
        ({"model": "clf", "input": "x"}, {"Authorization": "Bearer wrong"}, 401, "invalid_api_key"),
    ],
)
def test_declared_errors_are_real_and_conform(client, doc, body, headers, status, code):
    reply = post(client, "/v1/classify", body, headers)
    assert reply.status_code == status, reply.text
    conforms(doc, reply, "/v1/classify")
    assert reply.json()["error"]["code"] == code


def test_wrong_endpoint_is_a_declared_400(client, doc):
    reply = post(client, "/v1/entities", {"model": "clf", "input": "x"})
    assert reply.status_code == 400
    conforms(doc, reply, "/v1/entities")
    assert reply.json()["error"]["code"] == "wrong_endpoint"


def test_queue_full_and_timeout_conform(client, doc, hold):
    hold.touch()  # the engine does no work: a request waits, then times out
    try:
        reply = post(client, "/v1/classify", {"model": "clf", "input": ["x"] * 9})
        assert reply.status_code == 429
        conforms(doc, reply, "/v1/classify")
        reply = post(client, "/v1/classify", {"model": "clf", "input": "x"})
        assert reply.status_code == 504
        conforms(doc, reply, "/v1/classify")
    finally:
        hold.unlink()


def test_not_ready_conforms(registry):
    from tunelab.serving.app import Settings, create_app

    app = create_app(registry, Settings(monitor_every_s=0))
    loading = TestClient(app)  # no `with`: the lifespan (loading the engines) never ran
    doc = loading.get("/openapi.json").json()
    for path, method in (("/ready", "get"), ("/v1/classify", "post")):
        body = {"model": "clf", "input": "x"}
        reply = loading.get(path) if method == "get" else post(loading, path, body, {})
        assert reply.status_code == 503
        conforms(doc, reply, path, method)
