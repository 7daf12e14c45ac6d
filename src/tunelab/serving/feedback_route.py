"""POST /v1/feedback: the truth for a logged input, stored beside the prediction log.

Behind the same API keys and body limit as the other /v1 routes (the Gate and BodyLimit
middlewares cover every /v1 path). 404 when no logged input has the id, 422 when the answer
does not fit what was logged (a label the model does not have, entities for a classifier),
503 when the server keeps no log (--no-log: there is nothing to attach feedback to).
"""

from __future__ import annotations

from fastapi import Request  # at module level: FastAPI resolves the handlers' annotations here

from tunelab.serving.limits import ApiError
from tunelab.serving.schemas import FeedbackReply, FeedbackRequest


def add_feedback_route(app) -> None:
    @app.post("/v1/feedback", tags=["tunelab"], status_code=201, response_model=FeedbackReply)
    def feedback(body: FeedbackRequest, request: Request):
        """Store a label, entities, an ideal answer and/or a rating for a logged input; a
        second answer for the same input is kept as the next version."""
        from sqlalchemy.exc import DBAPIError

        served_log = app.state.log
        if served_log is None:
            raise ApiError(503, "this server keeps no prediction log (--no-log)", "no_log")
        try:
            return _store(served_log, body)
        except DBAPIError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise ApiError(
                503, f"the database cannot be reached: {reason}", "db_unavailable"
            ) from None

    def _store(served_log, body: FeedbackRequest) -> dict:
        from tunelab.store.feedback import FeedbackError, add_feedback

        logged = served_log.logged_input(body.request_id)
        if logged is None:
            raise ApiError(
                404,
                f"request_id: no logged input has id {body.request_id!r}",
                "request_not_found",
                "request_id",
            )
        answer = body.model_dump(include={"label", "entities", "ideal_answer", "rating"})
        try:
            stored = add_feedback(
                served_log.engine, body.request_id, answer, logged, "api", body.metadata
            )
        except FeedbackError as exc:
            raise ApiError(422, exc.message, "invalid_feedback", exc.field) from None
        return {
            "object": "feedback",
            **{k: stored[k] for k in ("id", "request_id", "version", "model")},
        }
