"""Feedback beside the prediction log: answers are checked against what was logged, a second
answer is a new version, a batch with one bad answer stores none, and concurrent writers
never take the same version. On SQLite and a real PostgreSQL."""

from __future__ import annotations

import threading

import postgres
import pytest
from test_store_log import make_row

from tunelab.store.db import open_db
from tunelab.store.feedback import (
    FeedbackError,
    add_feedback,
    add_many,
    check_answer,
    latest_feedback,
    logged_input,
    read_feedback,
)
from tunelab.store.tables import predictions

pg_server, db_url = postgres.pg_server, postgres.db_url


def logged_rows(engine, n: int, **kw) -> list[dict]:
    rows = [make_row(i, **kw) for i in range(n)]
    with engine.begin() as conn:
        conn.execute(predictions.insert(), rows)
    return rows


def test_versions_and_latest(db_url):
    engine = open_db(db_url)
    rows = logged_rows(engine, 3)
    pid = rows[0]["id"]
    logged = logged_input(engine, pid)
    assert logged == {"model": "sst2", "kind": "classify", "labels": ["pos", "neg"], "status": 200}
    first = add_feedback(engine, pid, {"label": "neg"}, logged, meta={"who": "ann"})
    second = add_feedback(engine, pid, {"label": "pos", "rating": 4}, logged)
    assert (first["version"], second["version"]) == (1, 2)
    other = add_feedback(engine, rows[1]["id"], {"rating": 1}, logged_input(engine, rows[1]["id"]))
    assert other["version"] == 1
    stored = read_feedback(engine, model="sst2")
    assert [
        (r["prediction_id"], r["version"], r["label"]) for r in stored if r["prediction_id"] == pid
    ] == [
        (pid, 1, "neg"),
        (pid, 2, "pos"),
    ]
    assert stored[0]["meta"] == {"who": "ann"} and stored[0]["source"] == "api"
    latest = latest_feedback(engine, "sst2")
    assert latest[pid]["label"] == "pos" and latest[pid]["rating"] == 4.0  # the newest wins
    assert set(latest) == {pid, rows[1]["id"]}
    assert logged_input(engine, "0" * 32) is None
    engine.dispose()


def test_a_batch_with_one_bad_answer_stores_nothing(db_url):
    engine = open_db(db_url)
    rows = logged_rows(engine, 2)
    items = [
        (rows[0]["id"], {"label": "pos"}, logged_input(engine, rows[0]["id"]), None),
        (rows[1]["id"], {"label": "maybe"}, logged_input(engine, rows[1]["id"]), None),
    ]
    with pytest.raises(FeedbackError, match="'maybe' is not a label of model 'sst2'"):
        add_many(engine, items, "import:x.csv")
    assert read_feedback(engine) == []
    # two answers for one input in one batch get consecutive versions
    same = [(rows[0]["id"], {"label": "pos"}, items[0][2], None)] * 2
    assert [r["version"] for r in add_many(engine, same, "import:x.csv")] == [1, 2]
    engine.dispose()


@pytest.mark.parametrize(
    "answer, kind, field, message",
    [
        ({}, "classify", None, "give at least one of"),
        ({"entities": [{"start": 0, "end": 3, "label": "PER"}]}, "classify", "entities", "takes"),
        ({"label": "pos"}, "generate", "label", "takes ideal_answer or rating"),
        ({"entities": [{"start": 3, "end": 1, "label": "PER"}]}, "entities", "entities", "0 <="),
        ({"entities": [{"start": 0, "end": 1}]}, "entities", "entities", "label"),
        ({"rating": float("nan")}, "classify", "rating", "finite"),
        ({"ideal_answer": 3}, "generate", "ideal_answer", "string"),
    ],
)
def test_answers_that_do_not_fit_name_their_field(answer, kind, field, message):
    logged = {"model": "m", "kind": kind, "labels": ["pos", "neg"], "status": 200}
    with pytest.raises(FeedbackError, match=message) as info:
        check_answer(answer, logged)
    assert info.value.field == field


def test_feedback_on_a_failed_request_is_refused():
    logged = {"model": "m", "kind": "classify", "labels": None, "status": 429}
    with pytest.raises(FeedbackError, match="status 429") as info:
        check_answer({"label": "pos"}, logged)
    assert info.value.field == "request_id"


def test_concurrent_answers_get_distinct_versions(db_url):
    engine = open_db(db_url)
    pid = logged_rows(engine, 1)[0]["id"]
    logged = logged_input(engine, pid)
    errors = []

    def answer(k):
        try:
            for _ in range(5):
                add_feedback(engine, pid, {"rating": k}, logged)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=answer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(r["version"] for r in read_feedback(engine)) == list(range(1, 21))
    engine.dispose()
