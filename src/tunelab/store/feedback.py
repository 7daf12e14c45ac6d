"""Feedback: what the truth was for a logged input, beside the prediction log.

One row per answer: `POST /v1/feedback` and `tunelab feedback import` both end in
`add_feedback`. An answer names the logged input by its id (the client's request id) and gives
one or more of a label (classifiers), entities (taggers), an ideal answer (generation, question
answering) and a rating; a second answer for the same input is a new version, never merged
into the first. Readers take the newest version per input (`latest_feedback`).

Checks (`check_answer`) run against what was logged: a label must be one of the classes the
model scored (the logged output's `scores`), entities must be spans with a label; each error
names the field, so the route answers 422 and the importer names the row.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Iterable
from typing import Any

from tunelab.errors import TunelabError
from tunelab.store.tables import feedback, predictions

ANSWER_FIELDS = ("label", "entities", "ideal_answer", "rating")
# which answers fit which kind of logged row (a rating fits every kind)
FITS = {
    "classify": {"label", "rating"},
    "entities": {"entities", "rating"},
    "generate": {"ideal_answer", "rating"},
    "answer": {"ideal_answer", "rating"},
}
VERSION_RETRIES = 20


class FeedbackError(TunelabError):
    """An answer that cannot be stored. `field` names the field at fault (None: the whole
    answer); `missing` is True when the input it names was never logged."""

    def __init__(self, message: str, field: str | None = None, missing: bool = False):
        super().__init__(message)
        self.message, self.field, self.missing = message, field, missing


def logged_input(engine, prediction_id: str) -> dict | None:
    """{"model", "kind", "labels", "status"} of the logged input `prediction_id` (labels: the
    classes its output scored, classifiers only), or None when no row has that id."""
    import sqlalchemy as sa

    c = predictions.c
    q = sa.select(c.model, c.kind, c.output, c.status).where(c.id == prediction_id)
    with engine.connect() as conn:
        row = conn.execute(q).first()
    if row is None:
        return None
    out = row.output if isinstance(row.output, dict) else {}
    scores = out.get("scores")
    labels = list(scores) if isinstance(scores, dict) else None
    return {"model": row.model, "kind": row.kind, "labels": labels, "status": row.status}


def _entity(value: Any, i: int) -> dict:
    where = f"entities[{i}]"
    if not isinstance(value, dict):
        raise FeedbackError(f"{where}: must be an object {{start, end, label}}", "entities")
    start, end, label = value.get("start"), value.get("end"), value.get("label")
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end))
    if not ints or not 0 <= start < end:
        raise FeedbackError(
            f"{where}: start and end must be integers, 0 <= start < end", "entities"
        )
    if not isinstance(label, str) or not label:
        raise FeedbackError(f"{where}.label: must be a non-empty string", "entities")
    return {"start": start, "end": end, "label": label}


def check_answer(answer: dict, logged: dict) -> dict:
    """The answer's fields, checked against the logged input `logged` (logged_input's dict):
    {field: value} for the answer fields given. FeedbackError naming the field otherwise."""
    status = logged.get("status", 200)
    if status != 200:
        raise FeedbackError(
            f"request_id: that request was not answered (status {status}); nothing to correct",
            "request_id",
        )
    given = {k: answer[k] for k in ANSWER_FIELDS if answer.get(k) is not None}
    if not given:
        raise FeedbackError(f"give at least one of {', '.join(ANSWER_FIELDS)}")
    kind = logged.get("kind")
    fits = FITS.get(kind, {"rating"})
    for k in given:
        if k not in fits:
            raise FeedbackError(
                f"{k}: a '{kind}' prediction takes {' or '.join(sorted(fits))}, not {k}", k
            )
    if "label" in given:
        label = given["label"]
        if not isinstance(label, str) or not label:
            raise FeedbackError("label: must be a non-empty string", "label")
        labels = logged.get("labels")
        if labels is not None and label not in labels:
            raise FeedbackError(
                f"label: {label!r} is not a label of model '{logged.get('model')}' "
                f"({', '.join(labels)})",
                "label",
            )
    if "entities" in given:
        if not isinstance(given["entities"], list):
            raise FeedbackError("entities: must be a list of {start, end, label}", "entities")
        given["entities"] = [_entity(e, i) for i, e in enumerate(given["entities"])]
    if "ideal_answer" in given and not isinstance(given["ideal_answer"], str):
        raise FeedbackError("ideal_answer: must be a string", "ideal_answer")
    if "rating" in given:
        r = given["rating"]
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r):
            raise FeedbackError("rating: must be a finite number", "rating")
        given["rating"] = float(r)
    return given


def _next_version(conn, prediction_id: str) -> int:
    import sqlalchemy as sa

    q = sa.select(sa.func.max(feedback.c.version)).where(feedback.c.prediction_id == prediction_id)
    return int(conn.execute(q).scalar() or 0) + 1


def add_feedback(
    engine,
    prediction_id: str,
    answer: dict,
    logged: dict,
    source: str = "api",
    meta: dict | None = None,
    at: float | None = None,
) -> dict:
    """Store one checked answer for `prediction_id` (logged: its logged_input dict) as the
    next version; returns {"id", "request_id", "version", "model", "time", **fields}."""
    return add_many(engine, [(prediction_id, answer, logged, meta)], source, at)[0]


def add_many(
    engine,
    items: Iterable[tuple[str, dict, dict, dict | None]],
    source: str,
    at: float | None = None,
) -> list[dict]:
    """Store (prediction_id, answer, logged, meta) items in one transaction, each checked
    first: FeedbackError stores none of them. Versions continue per input (two answers for
    one input in `items` get consecutive versions); a concurrent writer taking the same
    version makes the transaction retry."""
    import sqlalchemy as sa

    checked = [(pid, check_answer(a, logged), logged, meta) for pid, a, logged, meta in items]
    now = time.time() if at is None else at
    for attempt in range(VERSION_RETRIES):
        try:
            with engine.begin() as conn:
                return _insert_versions(conn, checked, source, now)
        except sa.exc.IntegrityError:  # another writer took the version first: read it again
            if attempt == VERSION_RETRIES - 1:
                raise
            time.sleep(random.uniform(0.0, 0.01 * (attempt + 1)))
    raise AssertionError("unreachable")


def _lock_inputs(conn, prediction_ids) -> None:
    """PostgreSQL: hold a transaction-scoped advisory lock per input, in a fixed order, so
    two writers answering the same input take turns instead of colliding on a version.
    (SQLite has one writer at a time already; a collision there is retried.)"""
    import sqlalchemy as sa

    if conn.dialect.name != "postgresql":
        return
    for pid in sorted(set(prediction_ids)):
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": pid})


def _insert_versions(conn, checked, source: str, now: float) -> list[dict]:
    _lock_inputs(conn, [pid for pid, *_ in checked])
    out, versions = [], {}
    for pid, fields, logged, meta in checked:
        if pid not in versions:
            versions[pid] = _next_version(conn, pid)
        else:
            versions[pid] += 1
        row = {
            "id": uuid.uuid4().hex,
            "prediction_id": pid,
            "version": versions[pid],
            "time": now,
            "model": logged.get("model"),
            "meta": meta,
            "source": source,
            **{k: fields.get(k) for k in ANSWER_FIELDS},
        }
        conn.execute(feedback.insert(), [row])
        out.append(
            {
                "id": row["id"],
                "request_id": pid,
                "version": row["version"],
                "model": row["model"],
                "time": now,
                **fields,
            }
        )
    return out


def read_feedback(engine, model: str | None = None, prediction_ids=None) -> list[dict]:
    """Every stored answer (all versions), oldest first; of one model's predictions, or of
    the given prediction ids."""
    import sqlalchemy as sa

    q = sa.select(feedback)
    if model is not None:
        q = q.where(feedback.c.model == model)
    if prediction_ids is not None:
        q = q.where(feedback.c.prediction_id.in_(list(prediction_ids)))
    q = q.order_by(feedback.c.time, feedback.c.prediction_id, feedback.c.version)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def latest_feedback(engine, model: str | None = None) -> dict[str, dict]:
    """prediction id -> its newest answer (the highest version)."""
    out: dict[str, dict] = {}
    for row in read_feedback(engine, model):
        prev = out.get(row["prediction_id"])
        if prev is None or row["version"] > prev["version"]:
            out[row["prediction_id"]] = row
    return out


def attach_feedback(engine, rows: list[dict], model: str | None = None) -> int:
    """Give each logged row that has an answer its newest one (in place): row["feedback"] =
    the answer's row, and row["true_label"] = its label when it has one (what the monitor's
    real accuracy reads). Returns how many rows got an answer."""
    latest = latest_feedback(engine, model)
    n = 0
    for row in rows:
        answer = latest.get(row["id"])
        if answer is None:
            continue
        row["feedback"] = answer
        if answer.get("label") is not None:
            row["true_label"] = answer["label"]
        n += 1
    return n
