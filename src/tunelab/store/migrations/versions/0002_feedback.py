"""feedback: what the truth was for a logged input (a label, entities, an ideal answer, a rating)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("prediction_id", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("model", sa.String(200)),
        sa.Column("label", sa.String(200)),
        sa.Column("entities", sa.JSON),
        sa.Column("ideal_answer", sa.Text),
        sa.Column("rating", sa.Float),
        sa.Column("meta", sa.JSON),
        sa.Column("source", sa.String(200), nullable=False),
        sa.UniqueConstraint("prediction_id", "version", name="uq_feedback_prediction_version"),
    )
    op.create_index("ix_feedback_model_time", "feedback", ["model", "time"])


def downgrade() -> None:
    op.drop_index("ix_feedback_model_time", table_name="feedback")
    op.drop_table("feedback")
