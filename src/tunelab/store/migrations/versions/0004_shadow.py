"""shadow_predictions: what a shadow model answered for a served input (not returned)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shadow_predictions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("prediction_id", sa.String(32), nullable=False),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(64)),
        sa.Column("path", sa.Text),
        sa.Column("reference", sa.String(300)),
        sa.Column("registry_version", sa.Integer),
        sa.Column("served_path", sa.Text),
        sa.Column("kind", sa.String(20)),
        sa.Column("output", sa.JSON),
        sa.Column("label", sa.String(200)),
        sa.Column("confidence", sa.Float),
        sa.Column("agrees", sa.Boolean),
        sa.Column("latency_ms", sa.Float),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_shadow_predictions_model_time", "shadow_predictions", ["model", "time"])
    op.create_index("ix_shadow_predictions_prediction", "shadow_predictions", ["prediction_id"])


def downgrade() -> None:
    op.drop_table("shadow_predictions")
