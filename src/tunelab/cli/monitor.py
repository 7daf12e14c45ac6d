"""`tunelab monitor MODEL`: the served model's logged rows in windows against its run's
reference -> report.html + report.json, alerts to stderr (and a webhook), and the exit code
(0 no alert, 3 alerts, 2 bad input) for cron. `--every 10m` keeps checking."""

from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import datetime
from pathlib import Path

EXAMPLES = """examples:
  tunelab monitor runs/sst2                          # the log in sqlite:///tunelab.db, windows of 200
  tunelab monitor runs/sst2 --last 1000 --window 250 --out /tmp/sst2-monitor
  tunelab monitor runs/sst2 --db postgresql://user:pw@db/tunelab --since 2026-12-01T00:00 --until 2026-12-02T00:00
  tunelab monitor runs/sst2 --json | jq '.alerts'    # exit 3 when any window alerts (cron)
  tunelab monitor runs/sst2 --rules rules.yaml --webhook https://hooks.example.com/tunelab
  tunelab monitor runs/sst2 --every 10m              # keep checking; Ctrl-C stops

Rules (--rules FILE, else the run config's monitor: section, else the defaults):
  - {stat: embedding.mmd_p, op: "<", value: 0.01}
  - {stat: estimate.accuracy, op: "<", value: 0.8, name: accuracy-drop}
Exit codes: 0 no alert, 3 at least one alert, 2 bad input. Docs: docs/monitoring.md."""

_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def add_parser(sub) -> None:
    m = sub.add_parser(
        "monitor",
        help="drift, label-free accuracy estimates and alerts from the prediction log",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    m.add_argument("model", metavar="MODEL", help="the served model's run or model folder")
    m.add_argument(
        "--db",
        metavar="URL",
        help="the prediction log (default: $TUNELAB_DB, else sqlite:///tunelab.db)",
    )
    m.add_argument(
        "--name", help="the logged model name (default: the folder's, as serve names it)"
    )
    m.add_argument("--since", metavar="T", help="rows from T on (ISO time or epoch seconds)")
    m.add_argument("--until", metavar="T", help="rows before T (ISO time or epoch seconds)")
    m.add_argument("--last", type=int, metavar="N", help="the newest N rows")
    m.add_argument("--window", type=int, help="rows per window (default: monitor.window, 200)")
    m.add_argument("--json", action="store_true", help="print report.json to stdout")
    m.add_argument("--out", metavar="DIR", help="folder for report.html/json (default: ./monitor)")
    m.add_argument(
        "--rules", metavar="FILE", help="alert rules (YAML/JSON list of {stat, op, value})"
    )
    m.add_argument("--webhook", metavar="URL", help="POST alerts as JSON to URL (with retries)")
    m.add_argument("--every", metavar="INTERVAL", help="keep checking every 30s / 10m / 1h")


def parse_time(value: str | None, flag: str) -> float | None:
    """Epoch seconds from an epoch number or an ISO time (naive: local time)."""
    from tunelab.errors import ConfigError

    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ConfigError(flag, "not an ISO time or epoch seconds", value, has_value=True) from None


def parse_every(value: str) -> float:
    """Seconds from "30s", "10m", "1h", "1d" (or a bare number of seconds)."""
    from tunelab.errors import ConfigError

    match = _EVERY.match(value or "")
    seconds = float(match.group(1)) * _UNITS[match.group(2)] if match else 0.0
    if seconds <= 0:
        raise ConfigError(
            "--every", "give a duration such as 30s, 10m or 1h", value, has_value=True
        )
    return seconds


def _monitor_config(path: str):
    """The run config's monitor: section, or None (no run config beside the model)."""
    from tunelab.config.legacy import read_run_config
    from tunelab.methods.loading import resolve_model_dir
    from tunelab.monitor.reference import run_dir_of

    run_dir = run_dir_of(path, resolve_model_dir(path))
    if run_dir is None:
        return None
    return read_run_config(run_dir / "config.yaml").monitor


def _rules(args, section):
    from tunelab.monitor.rules import DEFAULT_RULES, load_rules

    if args.rules:
        return load_rules(args.rules)
    if section is not None and section.rules:
        return load_rules([r.model_dump(exclude_none=True) for r in section.rules])
    return list(DEFAULT_RULES)


def _sinks(args, section) -> list:
    from tunelab.monitor.sinks import StderrSink, WebhookSink

    sinks = [StderrSink()]
    url = args.webhook or (section.webhook if section is not None else None)
    if url:
        sinks.append(WebhookSink(url))
    return sinks


def _check_args(args) -> None:
    from tunelab.errors import ConfigError

    if args.last is not None and (args.since or args.until):
        raise ConfigError("--last", "give --last N or --since/--until, not both")
    if args.last is not None and args.last < 1:
        raise ConfigError("--last", "must be >= 1", args.last, has_value=True)
    if args.window is not None and args.window < 1:
        raise ConfigError("--window", "must be >= 1", args.window, has_value=True)


def _read_rows(url: str, name: str, args) -> list[dict]:
    from tunelab.errors import TunelabError
    from tunelab.store.predictions import logged_models, read_predictions

    since, until = parse_time(args.since, "--since"), parse_time(args.until, "--until")
    rows = read_predictions(url, model=name, since=since, until=until, last=args.last)
    if rows:
        from tunelab.store.db import open_db
        from tunelab.store.feedback import attach_feedback

        engine = open_db(url)
        try:
            attach_feedback(engine, rows, model=name)  # the real accuracy beside the estimate
        finally:
            engine.dispose()
        return rows
    names = logged_models(url)
    if name not in names:
        shown = ", ".join(names) if names else "none yet"
        raise TunelabError(
            f"no logged rows for model '{name}' (logged models: {shown}); see --name"
        )
    raise TunelabError(f"empty window: no logged rows for '{name}' in the given time range")


def check(args, state: dict) -> tuple[dict, list[dict]]:
    """One round: read, window, test, report. Alerts of windows alerted in an earlier round
    (state["seen"]) are not sent again."""
    from tunelab.monitor.reference import load_reference
    from tunelab.monitor.report import build_report
    from tunelab.monitor.rules import evaluate
    from tunelab.monitor.sinks import send
    from tunelab.monitor.windows import slices, split_windows, window_stats

    name, url, size = state["name"], state["url"], state["window"]
    rows = _read_rows(url, name, args)  # unknown model / empty window: before any weights
    if state.get("ref") is None:
        state["ref"] = load_reference(args.model)
    ref = state["ref"]
    windows, stats_list, alerts = split_windows(rows, size), [], []
    for i, window in enumerate(windows):
        stats = window_stats(window, ref)
        stats.update(
            window=i, start=window[0]["time"], end=window[-1]["time"], first_id=window[0]["id"]
        )
        stats_list.append(stats)
        alerts += evaluate(stats, state["rules"], window=i, model=name)
    slice_stats: dict = {}
    for key in ("group",):
        groups = slices(rows, key=key)
        if groups:
            slice_stats[key] = {}
            for value, group_rows in groups.items():
                s = window_stats(group_rows, ref)
                slice_stats[key][str(value)] = s
                alerts += evaluate(
                    s, state["rules"], window=None, slice=f"{key}={value}", model=name
                )
    newest = {rid for s in stats_list for rid in ((s.get("embedding") or {}).get("newest") or [])}
    by_id = {r["id"]: r for r in rows if r["id"] in newest}
    report = build_report(name, stats_list, slice_stats, alerts, state["out"], rows_by_id=by_id)
    # a window is known by its first row; alert only on windows not alerted before
    fresh = []
    for a in alerts:
        w = a.get("window")
        key = (
            stats_list[w]["first_id"] if isinstance(w, int) else None,
            a.get("slice"),
            a.get("rule"),
            a.get("stat"),
        )
        if key not in state["seen"]:
            state["seen"].add(key)
            fresh.append(a)
    if fresh:
        send(fresh, state["sinks"])
    return report, fresh


def main(args) -> int:
    from tunelab.methods.loading import resolve_model_dir
    from tunelab.monitor.reference import served_name
    from tunelab.store.db import database_url, open_db

    _check_args(args)
    every = parse_every(args.every) if args.every else None
    parse_time(args.since, "--since"), parse_time(args.until, "--until")
    resolve_model_dir(args.model)  # a missing folder: one line, before the database
    url = database_url(args.db)
    open_db(url).dispose()  # StoreError: unreachable database, one line
    section = _monitor_config(args.model)
    state = {
        "url": url,
        "name": args.name or served_name(args.model),
        "window": args.window or (section.window if section is not None else 200),
        "rules": _rules(args, section),
        "sinks": _sinks(args, section),
        "out": Path(args.out or "monitor"),
        "seen": set(),
    }
    try:
        return _loop(args, state, every)
    except KeyboardInterrupt:  # --every: Ctrl-C is how it stops
        if every is None:
            raise
        return 0


def _loop(args, state: dict, every: float | None) -> int:
    import json

    while True:
        report, _ = check(args, state)
        if args.json:
            print(json.dumps(report, indent=2), flush=True)
        else:
            n = len(report["windows"])
            print(
                f"{state['name']}: {n} window{'s' * (n != 1)}, {len(report['alerts'])} alert(s)"
                f"\nreport: {state['out'] / 'report.html'}\njson:   {state['out'] / 'report.json'}",
                file=sys.stderr,
            )
        if every is None:
            return 3 if report["alerts"] else 0
        time.sleep(every)
