"""Alert rules: thresholds on window statistics, and the defaults.

A rule is {"stat": "embedding.mmd_p", "op": "<", "value": 0.0125, "name": optional}. It fires
on a window when the statistic is known (not None) and `observed op value` holds.

DEFAULT_RULES hold the per-window false-alarm rate at or below 5% on a stream with no shift:
the four p-value tests each fire at alpha = 0.05 / 4 (Bonferroni), so by the union bound
P(any fires | no shift) <= 4 * 0.05 / 4 = 0.05 whatever their dependence. The tests are
positively correlated (MMD and the domain classifier look at the same embeddings), so the
real rate sits below 5%. Effect sizes without a p-value (PSI, mean confidence, unk rate,
latency, the estimated accuracy) have no default: any fixed threshold's false-alarm rate
depends on the window size and the model, so they are left for the user's own rules.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tunelab.errors import TunelabError

P_VALUE_STATS = (
    "embedding.mmd_p",
    "embedding.domain_p",
    "prediction.chi2_p",
    "input.length_ks_p",
)
FALSE_ALARM_RATE = 0.05
ALPHA = FALSE_ALARM_RATE / len(P_VALUE_STATS)

DEFAULT_RULES: list[dict] = [
    {"stat": s, "op": "<", "value": ALPHA, "name": f"{s.split('.')[1]} (Bonferroni 0.05/4)"}
    for s in P_VALUE_STATS
]

KNOWN_STATS = frozenset(
    {
        "embedding.mmd2",
        "embedding.mmd_p",
        "embedding.domain_auc",
        "embedding.domain_p",
        "prediction.psi",
        "prediction.chi2",
        "prediction.chi2_p",
        "prediction.mean_confidence",
        "input.length_mean",
        "input.length_p95",
        "input.length_ks_p",
        "input.unk_rate",
        "generation.prompt_tokens_mean",
        "generation.answer_tokens_mean",
        "generation.stop_rate",
        "generation.nll_mean",
        "ops.latency_p50_ms",
        "ops.latency_p99_ms",
        "ops.error_rate",
        "ops.n",
        "estimate.accuracy",
        "estimate.accuracy_low",
        "estimate.accuracy_high",
        "estimate.f1_macro",
        "estimate.f1_low",
        "estimate.f1_high",
        "estimate.true_accuracy",
        "estimate.true_f1_macro",
        "estimate.estimate_error",
        "estimate.labelled_estimate",
        "estimate.n_labelled",
    }
)
SHARE_PREFIXES = ("prediction.label_share.", "input.languages.")
"""Dict-valued statistics a rule may index: `input.languages.en`, `prediction.label_share.pos`
(a language or label absent from the window has share 0)."""

OPS = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}
RULE_KEYS = {"stat", "op", "value", "name"}


class RulesError(TunelabError):
    """A rules file or list that cannot be used. Names the source and the rule's index."""

    def __init__(self, source: str, message: str, index: int | None = None):
        self.source, self.index = source, index
        where = source if index is None else f"{source}, rule {index}"
        super().__init__(f"{where}: {message}")


def _known(stat: str) -> bool:
    if stat in KNOWN_STATS:
        return True
    return any(stat.startswith(p) and len(stat) > len(p) for p in SHARE_PREFIXES)


def validate_rules(rules: Any, source: str = "rules") -> list[dict]:
    """The rules as clean dicts, or RulesError naming `source` and the 0-based rule index."""
    if not isinstance(rules, list):
        raise RulesError(source, f"expected a list of rules, got {type(rules).__name__}")
    out = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            raise RulesError(source, f"a rule is a mapping, got {rule!r}", i)
        extra = set(rule) - RULE_KEYS
        if extra:
            raise RulesError(
                source, f"unknown key(s) {sorted(extra)} (allowed: {sorted(RULE_KEYS)})", i
            )
        missing = {"stat", "op", "value"} - set(rule)
        if missing:
            raise RulesError(source, f"missing {sorted(missing)}", i)
        stat, op, value = rule["stat"], rule["op"], rule["value"]
        if not isinstance(stat, str) or not _known(stat):
            raise RulesError(
                source,
                f"unknown stat {stat!r} (known: {', '.join(sorted(KNOWN_STATS))}, "
                f"or {' / '.join(p + '<key>' for p in SHARE_PREFIXES)})",
                i,
            )
        if op not in OPS:
            raise RulesError(source, f"op must be one of {list(OPS)}, got {op!r}", i)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise RulesError(source, f"value must be a finite number, got {value!r}", i)
        name = rule.get("name")
        if name is not None and not isinstance(name, str):
            raise RulesError(source, f"name must be a string, got {name!r}", i)
        clean = {"stat": stat, "op": op, "value": float(value)}
        if name is not None:
            clean["name"] = name
        out.append(clean)
    return out


def _parse(text: str, source: str, is_json: bool) -> Any:
    if is_json:
        try:
            return json.loads(text)
        except ValueError as e:
            raise RulesError(source, f"not valid JSON: {e}") from e
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RulesError(source, f"not valid YAML: {' '.join(str(e).split())}") from e


def load_rules(spec: str | Path | Sequence[dict] | None) -> list[dict]:
    """Rules from a YAML/JSON file (a list, {"rules": [...]}, or {"monitor": {"rules": [...]}}),
    from a list, or DEFAULT_RULES for None."""
    if spec is None:
        return [dict(r) for r in DEFAULT_RULES]
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise RulesError(source, f"cannot read the rules file ({e.strerror or e})") from e
        is_json = path.suffix.lower() == ".json"
        data = _parse(text, source, is_json)
        if isinstance(data, dict) and isinstance(data.get("monitor"), dict):
            data = data["monitor"]
        if isinstance(data, dict) and "rules" in data:
            data = data["rules"]
        return validate_rules(data, source)
    return validate_rules(list(spec), "rules")


def lookup(stats: dict, stat: str) -> float | None:
    """The value of dotted `stat` in window statistics, or None when unknown."""
    for prefix in SHARE_PREFIXES:
        if stat.startswith(prefix):
            section, field = prefix.rstrip(".").split(".")
            shares = (stats.get(section) or {}).get(field)
            if not isinstance(shares, dict):
                return None
            value = shares.get(stat[len(prefix) :], 0.0)
            return None if value is None else float(value)
    section, field = stat.split(".", 1)
    value = (stats.get(section) or {}).get(field)
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def evaluate(
    stats: dict,
    rules: Sequence[dict],
    window: int | None = None,
    slice: str | None = None,
    model: str | None = None,
) -> list[dict]:
    """The alerts the rules raise on one window's statistics.

    Alert: {rule, stat, op, value, observed, window, slice, model, message}; `rule` is the
    rule's name, or "stat op value" when it has none. A statistic that is None (not
    computed for this model kind, or too few rows) never fires.
    """
    alerts = []
    for rule in rules:
        stat, op, value = rule["stat"], rule["op"], float(rule["value"])
        observed = lookup(stats, stat)
        if observed is None or not OPS[op](observed, value):
            continue
        name = rule.get("name") or f"{stat} {op} {value:g}"
        where = f"window {window}" if window is not None else "window"
        if slice is not None:
            where += f", slice {slice}"
        alerts.append(
            {
                "rule": name,
                "stat": stat,
                "op": op,
                "value": value,
                "observed": observed,
                "window": window,
                "slice": slice,
                "model": model,
                "message": f"{model or 'model'} {where}: {stat} = {observed:.4g} {op} {value:g}"
                f" ({name})",
            }
        )
    return alerts
