"""Generation statistics for causal LMs: prompt and answer lengths, how often the model
stopped on its own, and the served model's own per-token NLL of its answers (a model that
grows unsure of what it writes has drifted even when the prompts look alike)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _mean(values: Sequence[float | None]) -> float:
    kept = [float(v) for v in values if v is not None]
    return float(np.mean(kept)) if kept else float("nan")


def generation_stats(outputs: Sequence[dict | None], reference: dict | None = None) -> dict:
    """{prompt_tokens_mean, answer_tokens_mean, stop_rate, nll_mean, ref_nll_mean}.

    `outputs` are the logged output dicts ({"text", "finish", "prompt_tokens",
    "completion_tokens", "nll"}, nll = mean per-token NLL of the answer); stop_rate is the
    share with finish == "stop" (vs "length"). `reference` is Reference.generation
    ({"prompt_tokens": [...], "nll": [...]}) or None.
    """
    outs = [o for o in outputs if isinstance(o, dict)]
    finishes = [o.get("finish") for o in outs if o.get("finish") is not None]
    ref_nll = (reference or {}).get("nll") or []
    return {
        "prompt_tokens_mean": _mean([o.get("prompt_tokens") for o in outs]),
        "answer_tokens_mean": _mean([o.get("completion_tokens") for o in outs]),
        "stop_rate": (
            float(np.mean([f == "stop" for f in finishes])) if finishes else float("nan")
        ),
        "nll_mean": _mean([o.get("nll") for o in outs]),
        "ref_nll_mean": _mean(list(ref_nll)),
    }
