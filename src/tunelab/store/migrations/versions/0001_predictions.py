"""the prediction log: one row per served input

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("time", sa.Float, nullable=False),
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
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("n_tokens", sa.Integer),
        sa.Column("n_unk", sa.Integer),
        sa.Column("embedding", sa.LargeBinary),
        sa.Column("meta", sa.JSON),
    )
    op.create_index("ix_predictions_model_time", "predictions", ["model", "time"])


def downgrade() -> None:
    op.drop_index("ix_predictions_model_time", table_name="predictions")
    op.drop_table("predictions")
