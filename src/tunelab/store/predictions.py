"""Reading the prediction log back (tunelab monitor, /metrics' live gauges, the bench)."""

from __future__ import annotations

import numpy as np

from tunelab.store.tables import predictions


def _engine(url_or_engine):
    from tunelab.store.db import open_db

    return (
        (open_db(url_or_engine), True) if isinstance(url_or_engine, str) else (url_or_engine, False)
    )


def decode_embedding(blob: bytes | None) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(blob, dtype=np.float16).astype(np.float32)


def read_predictions(
    url_or_engine,
    model: str | None = None,
    since: float | None = None,
    until: float | None = None,
    last: int | None = None,
) -> list[dict]:
    """Rows (dicts, oldest first) of `model` (all models: None) with since <= time < until;
    `last`: only the newest N. Embeddings come back as float32 arrays."""
    import sqlalchemy as sa

    engine, own = _engine(url_or_engine)
    try:
        q = sa.select(predictions)
        if model is not None:
            q = q.where(predictions.c.model == model)
        if since is not None:
            q = q.where(predictions.c.time >= since)
        if until is not None:
            q = q.where(predictions.c.time < until)
        if last is not None:
            q = q.order_by(predictions.c.time.desc(), predictions.c.id).limit(last)
        else:
            q = q.order_by(predictions.c.time, predictions.c.id)
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
    finally:
        if own:
            engine.dispose()
    if last is not None:
        rows.reverse()
    for r in rows:
        r["embedding"] = decode_embedding(r["embedding"])
    return rows


def logged_models(url_or_engine) -> list[str]:
    """The model names that have rows, sorted."""
    import sqlalchemy as sa

    engine, own = _engine(url_or_engine)
    try:
        with engine.connect() as conn:
            q = sa.select(predictions.c.model).distinct().order_by(predictions.c.model)
            return [r[0] for r in conn.execute(q)]
    finally:
        if own:
            engine.dispose()
