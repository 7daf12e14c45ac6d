"""POST /v1/feedback on a real `tunelab serve` process: answers land beside the log with
versions, unknown ids are 404, answers that do not fit the model are 422, the API key guards
it, and a server without a log says 503."""

from __future__ import annotations

import httpx
import pytest
from conftest import tiny_config
from serving_helpers import running_server

KEY = "feedback-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def clf(tiny_model, toy_data, tmp_path_factory):
    from tunelab import api

    out = tmp_path_factory.mktemp("feedback-models") / "clf"
    api.train(tiny_config(tiny_model, toy_data, out, train={"epochs": 1}))
    return out


def test_feedback_is_stored_with_versions_and_checked(clf, tiny_llama, tmp_path):
    from tunelab.methods.loading import load_trained
    from tunelab.store.db import open_db
    from tunelab.store.feedback import read_feedback

    labels = list(load_trained(clf).labels.names)
    db = f"sqlite:///{tmp_path / 'log.db'}"
    args = [f"clf={clf}", f"tiny={tiny_llama}", "--db", db, "--api-key", KEY]
    with running_server(args, tmp_path / "server.log") as url:
        one = httpx.post(
            f"{url}/v1/classify", json={"model": "clf", "input": "good film"}, headers=AUTH
        )
        rid = one.headers["x-request-id"]
        # at once: the row may still wait in the log's writer, the answer is accepted anyway
        first = httpx.post(
            f"{url}/v1/feedback",
            json={"request_id": rid, "label": labels[0], "metadata": {"who": "ann"}},
            headers=AUTH,
        )
        assert first.status_code == 201, first.text
        assert first.json() == {
            "object": "feedback",
            "id": first.json()["id"],
            "request_id": rid,
            "version": 1,
            "model": "clf",
        }
        second = httpx.post(
            f"{url}/v1/feedback", json={"request_id": rid, "label": labels[1]}, headers=AUTH
        )
        assert second.status_code == 201 and second.json()["version"] == 2

        batch = httpx.post(
            f"{url}/v1/classify", json={"model": "clf", "input": ["a", "b"]}, headers=AUTH
        )
        bid = batch.json()["data"][1]["id"]
        rated = httpx.post(
            f"{url}/v1/feedback", json={"request_id": bid, "rating": 2}, headers=AUTH
        )
        assert rated.status_code == 201 and rated.json()["version"] == 1

        chat = httpx.post(
            f"{url}/v1/chat/completions",
            json={
                "model": "tiny",
                "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 3,
            },
            headers=AUTH,
        )
        cid = chat.headers["x-request-id"]
        ideal = httpx.post(
            f"{url}/v1/feedback", json={"request_id": cid, "ideal_answer": "Hello!"}, headers=AUTH
        )
        assert ideal.status_code == 201

        def error(body, headers=AUTH):
            reply = httpx.post(f"{url}/v1/feedback", json=body, headers=headers)
            return reply.status_code, reply.json()["error"]

        status, err = error({"request_id": "f" * 32, "label": labels[0]})
        assert status == 404 and err["param"] == "request_id" and "f" * 32 in err["message"]
        status, err = error({"request_id": rid, "label": "no-such-label"})
        assert status == 422 and err["param"] == "label" and "no-such-label" in err["message"]
        status, err = error({"request_id": cid, "label": labels[0]})
        assert status == 422 and err["param"] == "label"
        status, err = error({"request_id": rid})
        assert status == 422 and "at least one of" in err["message"]
        status, err = error({"request_id": rid, "rating": "high"})
        assert status == 422
        status, _ = error({"request_id": rid, "label": labels[0]}, headers={})
        assert status == 401
        assert httpx.get(f"{url}/health").status_code == 200  # still up
    engine = open_db(db)
    stored = read_feedback(engine)
    engine.dispose()
    by_input = {}
    for row in stored:
        by_input.setdefault(row["prediction_id"], []).append((row["version"], row["label"]))
    assert by_input[rid] == [(1, labels[0]), (2, labels[1])]
    assert [r["ideal_answer"] for r in stored if r["prediction_id"] == cid] == ["Hello!"]
    assert [r["rating"] for r in stored if r["prediction_id"] == bid] == [2.0]
    assert len(stored) == 4  # the refused answers left nothing


def test_a_server_without_a_log_answers_503(clf, tmp_path):
    with running_server([f"clf={clf}", "--no-log"], tmp_path / "server.log") as url:
        one = httpx.post(f"{url}/v1/classify", json={"model": "clf", "input": "x"})
        reply = httpx.post(
            f"{url}/v1/feedback",
            json={"request_id": one.headers["x-request-id"], "label": "x"},
        )
        assert reply.status_code == 503 and "--no-log" in reply.json()["error"]["message"]
