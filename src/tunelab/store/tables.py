"""The database's tables (SQLAlchemy Core). Change one only with a migration (migrations/)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# one row per served input (serving/prediction_log.py writes, monitor/ reads)
predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # uuid4 hex; the client's X-Request-Id
    sa.Column("request_id", sa.String(32), nullable=False),
    sa.Column("time", sa.Float, nullable=False),  # epoch seconds
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("version", sa.String(64)),
    sa.Column("kind", sa.String(20)),
    sa.Column("task", sa.String(40)),
    sa.Column("input_hash", sa.String(64)),
    sa.Column("text", sa.Text),
    sa.Column("pair", sa.Text),
    sa.Column("output", sa.JSON),
    sa.Column("label", sa.String(200)),
    sa.Column("confidence", sa.Float),
    sa.Column("latency_ms", sa.Float),
    sa.Column("status", sa.Integer, nullable=False, default=200),
    sa.Column("error", sa.Text),
    sa.Column("n_tokens", sa.Integer),
    sa.Column("n_unk", sa.Integer),
    sa.Column("embedding", sa.LargeBinary),  # float16 x EMBED_DIM
    sa.Column("meta", sa.JSON),
    sa.Index("ix_predictions_model_time", "model", "time"),
)

COLUMNS = [c.name for c in predictions.columns]

# what the truth was for a logged input: one row per answer, versioned (store/feedback.py)
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # uuid4 hex
    # the logged input's id (predictions.id, the client's request id); no foreign key: an
    # answer may arrive while its row still waits in the log's writer
    sa.Column("prediction_id", sa.String(32), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),  # 1, 2, ... per prediction_id
    sa.Column("time", sa.Float, nullable=False),  # epoch seconds
    sa.Column("model", sa.String(200)),  # the prediction's model, for reading per model
    sa.Column("label", sa.String(200)),
    sa.Column("entities", sa.JSON),  # [{"start", "end", "label"}, ...]
    sa.Column("ideal_answer", sa.Text),
    sa.Column("rating", sa.Float),
    sa.Column("meta", sa.JSON),
    sa.Column("source", sa.String(200), nullable=False),  # "api" or "import:FILE"
    sa.UniqueConstraint("prediction_id", "version", name="uq_feedback_prediction_version"),
    sa.Index("ix_feedback_model_time", "model", "time"),
)
