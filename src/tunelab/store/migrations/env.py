"""Alembic environment: run on the connection store/db.py hands over (no alembic.ini)."""

from alembic import context

from tunelab.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
