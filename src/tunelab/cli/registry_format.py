"""The human output of `tunelab registry`: the version table, one version's page, and the
one-line confirmations. --json prints the store's dicts instead; nothing here is read back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

NUMBER_SHOWN = 6  # metrics per split on a version's page


def when(t: float | None) -> str:
    """Local time to the second (the database keeps epoch seconds)."""
    return "-" if t is None else datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def _numbers(metrics: dict) -> list[tuple[str, float]]:
    return [
        (k, v)
        for k, v in (metrics or {}).items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]


def headline(results: dict | None) -> str:
    """`test accuracy=0.9125`: the metric the run selected on (else the first one), on the
    test split when it has one, else validation."""
    if not results:
        return "-"
    split = "test" if results.get("test") else "validation"
    numbers = dict(_numbers(results.get(split) or {}))
    if not numbers:
        return "-"
    best = ((results.get("run") or {}).get("best") or {}).get("metric")
    metric = best if best in numbers else next(iter(numbers))
    return f"{split} {metric}={numbers[metric]:.4f}"


def table(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def version_table(rows: list[dict[str, Any]]) -> str:
    """One line per version: name, version, aliases, kind, created, parent, headline, path."""
    if not rows:
        return "no models registered yet (tunelab registry add NAME RUN_OR_EXPORT)"
    header = ["NAME", "VERSION", "ALIASES", "KIND", "CREATED", "PARENT", "RESULT", "PATH"]
    body = [
        [
            r["name"],
            str(r["version"]),
            ",".join(r["aliases"]) or "-",
            r["kind"],
            when(r["created"]),
            "-" if r["parent_version"] is None else str(r["parent_version"]),
            headline(r["results"]),
            r["path"],
        ]
        for r in rows
    ]
    return table(header, body)


def _field(label: str, value: str) -> str:
    return f"{label + ':':<14}{value}"


def _data_lines(data: dict) -> list[str]:
    lines = []
    for key, d in data.items():
        where = d.get("found") or d.get("path")
        digest = f"sha256 {d['sha256'][:16]}" if d.get("sha256") else "not found"
        lines.append(f"  {key}: {where}  ({digest})")
    return lines or ["  (the config names no data files)"]


def _result_lines(results: dict | None) -> list[str]:
    if not results:
        return ["  (no results.json)"]
    lines = []
    for split in ("validation", "test"):
        numbers = _numbers(results.get(split) or {})[:NUMBER_SHOWN]
        if numbers:
            lines.append(f"  {split}: " + ", ".join(f"{k} {v:.4f}" for k, v in numbers))
    return lines or ["  (no metrics)"]


def version_page(v: dict[str, Any]) -> str:
    """Everything a version recorded, for a terminal."""
    lineage = v.get("lineage") or {}
    config = v.get("config") or {}
    method = config.get("method")
    method = method.get("name") if isinstance(method, dict) else method
    procedure = config.get("procedure")
    procedure = procedure.get("name") if isinstance(procedure, dict) else procedure
    versions = lineage.get("versions") or {}
    aliases = f"  [{', '.join(v['aliases'])}]" if v.get("aliases") else ""
    recorded = "recorded by the run" if lineage.get("versions_from") == "run" else "installed"
    parent = v["parent_version"]
    lines = [
        f"{v['name']} version {v['version']}{aliases}",
        _field("path", f"{v['path']} ({v['kind']})"),
        _field("created", when(v["created"])),
        _field("parent", "-" if parent is None else f"version {parent}"),
        _field("started from", lineage.get("base_model") or "-"),
        _field(
            "task",
            f"{config.get('task', '-')}, method {method or '-'}, procedure {procedure or 'standard'}",
        ),
        _field(
            "fingerprint",
            f"model {lineage.get('model_fingerprint', '-')}; logged as version "
            f"{lineage.get('served_version', '-')} when served from its path",
        ),
        _field(
            "versions",
            (", ".join(f"{k} {val}" for k, val in versions.items()) or "-") + f" ({recorded})",
        ),
        _field("tags", ", ".join(f"{k}={val}" for k, val in (v.get("tags") or {}).items()) or "-"),
        "data:",
        *_data_lines(lineage.get("data") or {}),
        "results:",
        *_result_lines(v.get("results")),
    ]
    moves = v.get("history") or []
    if moves:
        lines.append(f"alias history of {v['name']}:")
        body = [
            [
                when(m["time"]),
                m["alias"],
                m["action"],
                f"{'-' if m['from_version'] is None else m['from_version']} -> {m['to_version']}",
            ]
            for m in moves
        ]
        lines += [
            "  " + line for line in table(["TIME", "ALIAS", "ACTION", "MOVE"], body).splitlines()
        ]
    return "\n".join(lines)


def added(v: dict[str, Any]) -> str:
    text = f"{v['name']}: version {v['version']} added ({v['kind']} {v['path']})"
    if v["parent_version"] is not None:
        text += f", parent version {v['parent_version']}"
    if v["aliases"]:
        text += f"; {', '.join(v['aliases'])} -> version {v['version']}"
    return text


def moved(m: dict[str, Any], action: str) -> str:
    name, alias, version, previous = m["name"], m["alias"], m["version"], m["previous"]
    if action == "rollback":
        return f"{name}: {alias} rolled back to version {version} (was {previous})"
    if not m.get("changed", True):
        return f"{name}: {alias} already is version {version}; nothing changed"
    was = "unset" if previous is None else f"version {previous}"
    return f"{name}: {alias} -> version {version} (was {was})"


def tagged(v: dict[str, Any], key: str) -> str:
    return f"{v['name']} version {v['version']}: {key}={v['tags'][key]}"


def mirrored(report: dict[str, Any]) -> str:
    """`sst2: mirrored to MLflow URI (experiment ...): version 2 = MLflow version 2 (new);
    champion -> 2`."""
    created = set(report["created"])
    versions = ", ".join(
        f"version {n} = MLflow version {m}{' (new)' if n in created else ''}"
        for n, m in sorted(report["versions"].items())
    )
    aliases = ", ".join(f"{a} -> {d['version']}" for a, d in sorted(report["aliases"].items()))
    return (
        f"{report['name']}: mirrored to MLflow {report['uri']} (experiment "
        f"{report['experiment']}): {versions or 'no versions'}"
        + (f"; {aliases}" if aliases else "")
    )
