"""How a shadow model compares with the model it shadowed, on the same live inputs.

`tunelab shadow NAME` reads the pairs (store/shadow.py) and reports, per shadow version:

- **agreement**: the share of inputs where both gave the same answer (serving/shadow.py's
  `answer_key`), with a 95% Wilson interval, and for classifiers which labels flipped;
- **the estimated difference** (classifiers whose runs give a monitor reference): each
  model's label-free accuracy estimate on the same inputs (its own calibrator, as `tunelab
  monitor` estimates: monitor/estimate.py), and their difference, shadow - served. Its 95%
  interval counts what the realized difference can do given the calibrated confidences: it
  moves only on inputs where the answers differ (elsewhere both are right or both wrong),
  where the two cannot both be right, so each adds p_a + p_b - (p_b - p_a)^2 to n^2 times
  the variance; plus each calibrator's own uncertainty (its validation accuracy's binomial
  variance), weighted by the share of inputs that differ. Identical models differ by
  exactly 0 with a zero-width interval;
- **with feedback**: on the inputs that got a true label, both accuracies, the paired
  bootstrap interval of the difference and the exact McNemar test (metrics/stats.py);
- the shadow's errors and both models' median latency.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tunelab.metrics.stats import wilson
from tunelab.monitor.estimate import Z95, calibrated_distribution, estimate_performance
from tunelab.monitor.windows import calibrator_of, row_probs

SEED = 0


def _median(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.median(vals)) if vals else None


def _flips(pairs: list[dict]) -> list[dict]:
    counts: dict[tuple[str, str], int] = {}
    for r in pairs:
        if r["agrees"] is False and r["label"] is not None and r["shadow_label"] is not None:
            key = (r["label"], r["shadow_label"])
            counts[key] = counts.get(key, 0) + 1
    return [
        {"served": a, "shadow": b, "n": n}
        for (a, b), n in sorted(counts.items(), key=lambda kv: -kv[1])
    ]


def _shadow_row(r: dict) -> dict:
    return {"label": r["shadow_label"], "output": r["shadow_output"]}


def estimated_difference(served_ref: Any, shadow_ref: Any, pairs: list[dict]) -> dict | None:
    """The label-free comparison of a classifier pair (see the module docstring); None when
    the references cannot give one (no validation probabilities, other label sets)."""
    for ref in (served_ref, shadow_ref):
        if ref is None or getattr(ref, "val_probs", None) is None or ref.labels is None:
            return None
        if np.ndim(ref.val_labels) != 1 or len(ref.val_labels) == 0:
            return None  # multi-label: no single-label accuracy
    names = list(served_ref.labels)
    if list(shadow_ref.labels) != names:
        return None
    both = [
        (a, b)
        for a, b in ((row_probs(r, names), row_probs(_shadow_row(r), names)) for r in pairs)
        if a is not None and b is not None
    ]
    if not both:
        return None
    pa = np.asarray([a for a, _ in both], dtype=np.float64)
    pb = np.asarray([b for _, b in both], dtype=np.float64)
    cal_a, cal_b = calibrator_of(served_ref), calibrator_of(shadow_ref)
    n, rows = len(pa), np.arange(len(pa))
    la, lb = pa.argmax(axis=1), pb.argmax(axis=1)
    conf_a = calibrated_distribution(cal_a, pa)[rows, la]
    conf_b = calibrated_distribution(cal_b, pb)[rows, lb]
    diff = float(np.mean(conf_b - conf_a))
    # the realized difference varies only where the answers differ: there the two cannot
    # both be right, so (b right) - (a right) has variance p_a + p_b - (p_b - p_a)^2
    differ = la != lb
    p_a, p_b = conf_a[differ], conf_b[differ]
    scale = np.where(p_a + p_b > 1, 1 / np.maximum(p_a + p_b, 1e-12), 1.0)
    p_a, p_b = p_a * scale, p_b * scale
    var = float(np.sum(p_a + p_b - (p_b - p_a) ** 2)) / n**2
    # each calibrator's own uncertainty (its validation accuracy's), where the answers differ
    share = float(differ.mean())
    for cal in (cal_a, cal_b):
        acc = cal.reference_accuracy
        var += share * acc * (1 - acc) / cal.n_val
    half = Z95 * np.sqrt(var)
    return {
        "n": n,
        "n_differ": int(differ.sum()),
        "served": estimate_performance(cal_a, pa),
        "shadow": estimate_performance(cal_b, pb),
        "diff": diff,
        "low": max(-1.0, diff - half),
        "high": min(1.0, diff + half),
    }


def labelled_difference(pairs: list[dict], seed: int = SEED) -> dict | None:
    """Both models scored on the inputs that got a true label (feedback): accuracies, the
    paired bootstrap interval of shadow - served, McNemar."""
    from tunelab.metrics.stats import paired_test

    rows = [r for r in pairs if r.get("true_label") is not None and r["shadow_label"] is not None]
    if not rows:
        return None
    a = np.array([r["label"] == r["true_label"] for r in rows])
    b = np.array([r["shadow_label"] == r["true_label"] for r in rows])
    test = paired_test(
        lambda idx: {"accuracy": float(a[idx].mean())},
        lambda idx: {"accuracy": float(b[idx].mean())},
        len(rows),
        seed=seed,
        correct_a=a,
        correct_b=b,
    )
    acc = test["accuracy"]
    return {
        "n": len(rows),
        "served_accuracy": acc["a"],
        "shadow_accuracy": acc["b"],
        "diff": acc["diff"],
        "low": acc["low"],
        "high": acc["high"],
        "p_value": acc["p_value"],
        "mcnemar": test["mcnemar"],
    }


def compare_version(pairs: list[dict], served_ref: Any = None, shadow_ref: Any = None) -> dict:
    """The comparison of one group of `by_versions` (one served and one shadow version)."""
    answered = [r for r in pairs if r["status"] == 200 and r["agrees"] is not None]
    agreed = sum(bool(r["agrees"]) for r in answered)
    low, high = wilson(agreed, len(answered))
    head = pairs[-1]
    out = {
        "served_version": head["version"],
        "served_path": head["served_path"],
        "shadow_version": head["shadow_version"],
        "path": head["path"],
        "reference": head["reference"],
        "registry_version": head["registry_version"],
        "kind": head["kind"],
        "first": pairs[0]["time"],
        "last": head["time"],
        "n": len(pairs),
        "n_answered": len(answered),
        "n_errors": len(pairs) - len(answered),
        "errors": sorted({r["error"] for r in pairs if r["error"]})[:5],
        "agreement": agreed / len(answered) if answered else None,
        "agreement_low": low if answered else None,
        "agreement_high": high if answered else None,
        "flips": _flips(answered) if head["kind"] == "classify" else [],
        "latency_ms": {
            "served": _median(r["latency_ms"] for r in answered),
            "shadow": _median(r["shadow_latency_ms"] for r in answered),
        },
        "estimate": None,
        "feedback": None,
    }
    if head["kind"] == "classify":
        out["estimate"] = estimated_difference(served_ref, shadow_ref, answered)
        out["feedback"] = labelled_difference(answered)
    return out


def by_versions(pairs: list[dict]) -> list[list[dict]]:
    """Pairs by the (served version, shadow version) that answered them (an alias that moved
    gives several groups), in the order the groups first answered."""
    out: dict[tuple, list[dict]] = {}
    for r in pairs:
        out.setdefault((r["version"], r["shadow_version"]), []).append(r)
    return list(out.values())


def _reference(path: str | None, notes: list[str]):
    from tunelab.errors import TunelabError
    from tunelab.monitor.reference import load_reference

    if not path:
        return None
    try:
        return load_reference(path)
    except TunelabError as exc:
        notes.append(f"no label-free estimate for {path}: {exc}")
        return None


def report(engine, name: str, since=None, until=None) -> dict:
    """{"model", "groups": [compare_version(...) per version pair], "notes"}; TunelabError
    when NAME has no shadow rows."""
    from tunelab.errors import TunelabError
    from tunelab.store.feedback import attach_feedback
    from tunelab.store.shadow import read_shadow_pairs, shadowed_models

    pairs = read_shadow_pairs(engine, name, since, until)
    if not pairs:
        known = ", ".join(shadowed_models(engine)) or "none"
        raise TunelabError(
            f"no shadow answers for '{name}' in this window (models with shadow answers: "
            f"{known}); serve it with --shadow"
        )
    attach_feedback(engine, pairs, name)
    notes: list[str] = []
    refs: dict[str, object] = {}
    groups = []
    for group in by_versions(pairs):
        head = group[-1]
        if head["kind"] == "classify":
            for path in (head["served_path"], head["path"]):
                if path not in refs:
                    refs[path] = _reference(path, notes)
        groups.append(compare_version(group, refs.get(head["served_path"]), refs.get(head["path"])))
    return {"model": name, "groups": groups, "notes": notes}
