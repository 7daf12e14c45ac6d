"""the model registry: versions of a model name, their aliases and the aliases' history

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("parent_version", sa.Integer),
        sa.Column("config", sa.JSON),
        sa.Column("lineage", sa.JSON),
        sa.Column("results", sa.JSON),
        sa.Column("tags", sa.JSON),
        sa.UniqueConstraint("name", "version", name="uq_model_versions_name_version"),
    )
    op.create_table(
        "model_aliases",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("alias", sa.String(100), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )
    op.create_table(
        "alias_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("alias", sa.String(100), nullable=False),
        sa.Column("from_version", sa.Integer),
        sa.Column("to_version", sa.Integer, nullable=False),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
    )
    op.create_index("ix_alias_history_name_alias", "alias_history", ["name", "alias", "id"])


def downgrade() -> None:
    op.drop_index("ix_alias_history_name_alias", table_name="alias_history")
    op.drop_table("alias_history")
    op.drop_table("model_aliases")
    op.drop_table("model_versions")
