"""Operations statistics of a window: latency percentiles and the error rate, over every
logged request (failed ones included)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def ops_stats(rows: Sequence[dict]) -> dict:
    """{latency_p50_ms, latency_p99_ms, error_rate, n}; an error is any status != 200."""
    lat = np.asarray([r["latency_ms"] for r in rows if r.get("latency_ms") is not None], float)
    n = len(rows)
    errors = sum(1 for r in rows if r.get("status") != 200)
    return {
        "latency_p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
        "latency_p99_ms": float(np.percentile(lat, 99)) if lat.size else float("nan"),
        "error_rate": errors / n if n else float("nan"),
        "n": n,
    }
