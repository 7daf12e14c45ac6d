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

# what a shadow model (`tunelab serve ... --shadow challenger@NAME`) answered for a served
# input, never returned to the client (serving/shadow.py writes, monitor/shadow.py reads)
shadow_predictions = sa.Table(
    "shadow_predictions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # uuid4 hex
    # the served input's row (predictions.id); no foreign key: the rows are written apart
    sa.Column("prediction_id", sa.String(32), nullable=False),
    sa.Column("time", sa.Float, nullable=False),  # epoch seconds
    sa.Column("model", sa.String(200), nullable=False),  # the served name it shadows
    sa.Column("version", sa.String(64)),  # fingerprint of the shadow's folder
    sa.Column("path", sa.Text),  # the shadow's folder
    sa.Column("reference", sa.String(300)),  # the registry reference (challenger@sst2)
    sa.Column("registry_version", sa.Integer),  # the registered version it was
    sa.Column("served_path", sa.Text),  # the folder of the model that answered
    sa.Column("kind", sa.String(20)),
    sa.Column("output", sa.JSON),
    sa.Column("label", sa.String(200)),
    sa.Column("confidence", sa.Float),
    sa.Column("agrees", sa.Boolean),  # the same answer as the served model's
    sa.Column("latency_ms", sa.Float),
    sa.Column("status", sa.Integer, nullable=False, default=200),
    sa.Column("error", sa.Text),
    sa.Index("ix_shadow_predictions_model_time", "model", "time"),
    sa.Index("ix_shadow_predictions_prediction", "prediction_id"),
)

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

# the model registry (store/registry.py): one row per registered version of a model name
model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),  # 1, 2, ... per name
    sa.Column("path", sa.Text, nullable=False),  # the run or export folder, absolute
    sa.Column("kind", sa.String(20), nullable=False),  # "run" or "export"
    sa.Column("created", sa.Float, nullable=False),  # epoch seconds
    sa.Column("parent_version", sa.Integer),  # the version it was fine-tuned from (same name)
    sa.Column("config", sa.JSON),  # the run's config.yaml as it was when registered
    sa.Column("lineage", sa.JSON),  # data fingerprints, versions, model fingerprint (lineage.py)
    sa.Column("results", sa.JSON),  # the run's results.json
    sa.Column("tags", sa.JSON),  # {key: value}
    sa.UniqueConstraint("name", "version", name="uq_model_versions_name_version"),
)

# which version an alias (champion, challenger, ...) of a name points at now; the primary key
# makes two writers of one alias take turns
model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("alias", sa.String(100), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),  # epoch seconds
)

# every move of an alias, oldest first: rollback walks it back to the previous holder
alias_history = sa.Table(
    "alias_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("alias", sa.String(100), nullable=False),
    sa.Column("from_version", sa.Integer),  # None: the alias was not set before
    sa.Column("to_version", sa.Integer, nullable=False),
    sa.Column("time", sa.Float, nullable=False),  # epoch seconds
    sa.Column("action", sa.String(20), nullable=False),  # "add", "promote" or "rollback"
    sa.Index("ix_alias_history_name_alias", "name", "alias", "id"),
)
