"""The one database: SQLAlchemy tables, Alembic migrations, the batched prediction-log writer
and the read API (SQLite by default, PostgreSQL for a team)."""
