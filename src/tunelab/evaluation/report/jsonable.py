"""report.json's numbers as strict JSON (used by the report and by the page that embeds it)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def jsonable(obj: Any) -> Any:
    """A deep copy fit for strict JSON: numpy scalars as Python numbers, NaN/inf as None,
    numpy arrays dropped (per-row arrays such as probabilities stay out of report.json)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items() if not isinstance(v, np.ndarray)}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, (str, type(None))):
        return obj
    return str(obj)
