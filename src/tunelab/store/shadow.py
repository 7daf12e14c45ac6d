"""Reading shadow mode's rows back: each shadow answer beside the served answer it shadowed
(serving/shadow.py writes `shadow_predictions`; monitor/shadow.py compares them)."""

from __future__ import annotations

from tunelab.store.tables import predictions, shadow_predictions


def read_shadow_pairs(
    engine, model: str, since: float | None = None, until: float | None = None
) -> list[dict]:
    """One dict per shadowed input of `model` with since <= time < until, oldest first: the
    served row's `id`, `time`, `label`, `output`, `confidence`, `latency_ms`, `version` and
    the shadow's as `shadow_label`, `shadow_output`, ..., plus `agrees`, `status` (the
    shadow's), `path`, `served_path`, `reference`, `registry_version`. A shadow row whose
    served row is not written yet is left out (it comes with the next read)."""
    import sqlalchemy as sa

    p, s = predictions.c, shadow_predictions.c
    q = (
        sa.select(
            p.id,
            p.time,
            p.label,
            p.output,
            p.confidence,
            p.latency_ms,
            p.version,
            s.label.label("shadow_label"),
            s.output.label("shadow_output"),
            s.confidence.label("shadow_confidence"),
            s.latency_ms.label("shadow_latency_ms"),
            s.version.label("shadow_version"),
            s.agrees,
            s.status,
            s.error,
            s.kind,
            s.path,
            s.served_path,
            s.reference,
            s.registry_version,
        )
        .join(predictions, p.id == s.prediction_id)
        .where(s.model == model)
    )
    if since is not None:
        q = q.where(s.time >= since)
    if until is not None:
        q = q.where(s.time < until)
    q = q.order_by(s.time, s.id)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def shadowed_models(engine) -> list[str]:
    """The served names that have shadow rows, sorted."""
    import sqlalchemy as sa

    q = sa.select(shadow_predictions.c.model).distinct().order_by(shadow_predictions.c.model)
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(q)]
