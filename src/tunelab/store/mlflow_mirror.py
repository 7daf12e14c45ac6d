"""A copy of the model registry on an MLflow tracking server (`--mlflow URI`).

The tunelab database stays the source of truth; MLflow gets a copy that its UI and clients
can read. Each tunelab version of NAME becomes

- one MLflow run in the experiment `tunelab-registry/NAME` (or the one asked for), named
  `NAME vN`: params = the version's config flattened (`train.lr`), metrics = the finite
  numbers of its results.json flattened the same way (`test.accuracy`), tags = where it came
  from (`tunelab.registry.*`, `tunelab.lineage.*`, `tunelab.versions.*`) and its tunelab tags;
- one version of the MLflow registered model NAME whose source is that run. MLflow numbers its
  versions itself, so the tunelab number is the model version's tag `tunelab.registry.version`;

and each tunelab alias (champion, challenger, ...) is set on the MLflow version that matches
the tunelab version it points at.

Mirroring is idempotent: a version already there (found by its tags) is not created again,
only its tags are brought up to date (tags are the only part of a version that changes). A run
that a failed mirror left half written (no `tunelab.mirror.complete` tag) is deleted and made
again. Aliases that exist only on the MLflow side are left alone.

By hand, on `MlflowClient`, because MLflow has no "sync from another registry": the client's
own calls do it in a few lines, and keep no process-wide active run. mlflow is an extra:
imported inside the functions that use it.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from typing import TYPE_CHECKING, Any

from tunelab.errors import TunelabError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.engine import Engine

EXPERIMENT = "tunelab-registry/{name}"
NAME_TAG = "tunelab.registry.name"
VERSION_TAG = "tunelab.registry.version"
COMPLETE_TAG = "tunelab.mirror.complete"
ENV = "TUNELAB_MLFLOW"
# MLflow's limits: keys of letters, digits, _ - . / : and space; value lengths; batch sizes
_BAD_KEY = re.compile(r"[^\w\-. /:]")
PARAM_CHARS, TAG_CHARS = 6000, 5000
PARAMS_PER_CALL, METRICS_PER_CALL = 100, 1000
# while mirroring, unless the user set them: a server that is down fails in seconds, not
# after MLflow's minutes of retries, and MLflow does not print "View run ... at" links on
# stdout (which is the command's: --json must stay JSON)
QUICK = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}
_SCHEMES = ("http://", "https://", "sqlite:", "postgresql", "mysql", "mssql", "databricks")


class MirrorError(TunelabError):
    """The MLflow side could not be written (server down, refused request). Exit code 5: a
    registry action that mirrors has been done in the database all the same."""

    exit_code = 5


def mlflow_uri(arg: str | None = None) -> str | None:
    """`arg` (--mlflow), else $TUNELAB_MLFLOW, else None (no mirror)."""
    return arg or os.environ.get(ENV) or None


_USERINFO = re.compile(r"(//[^/:@]*):([^/@]*)@")


def shown_uri(uri: str) -> str:
    """The URI as it may be printed: a password in it replaced by ***."""
    return _USERINFO.sub(r"\1:***@", uri)


def _scrubbed(text: str, uri: str) -> str:
    """`text` (an error message) without the URI's password."""
    found = _USERINFO.search(uri)
    return text.replace(found.group(2), "***") if found and found.group(2) else text


def check_uri(uri: str) -> None:
    """Refuse what cannot be a tracking URI, and a missing mlflow, before anything is done."""
    import importlib.util

    from tunelab.errors import ConfigError

    if not uri.startswith(_SCHEMES):
        raise ConfigError(
            "--mlflow",
            "give the tracking server's URL (http://host:5000) or a database URI (sqlite:///m.db)",
            uri,
            has_value=True,
        )
    if importlib.util.find_spec("mlflow") is None:
        raise ConfigError("--mlflow", "MLflow is not installed; pip install 'tunelab[mlflow]'")


def resync_command(name: str, uri: str, db: str | None = None) -> str:
    """The command that repairs a failed mirror of `name`."""
    from tunelab.store.db import shown_url

    text = f"tunelab registry mirror {name} --mlflow {shown_uri(uri)}"
    return text + (f" --db {shown_url(db)}" if db else "")


def _flat(tree: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, leaf) of nested dicts; lists and other values are leaves."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _flat(value, f"{prefix}{key}.")
    elif prefix:
        yield _BAD_KEY.sub("_", prefix[:-1]), tree


def params_of(config: dict | None) -> dict[str, str]:
    """The config as MLflow params: dotted keys, values as strings (as the train tracker)."""
    return {k: str(v)[:PARAM_CHARS] for k, v in _flat(config or {})}


def metrics_of(results: dict | None) -> dict[str, float]:
    """The finite numbers of results.json, dotted (`test.accuracy`, `baselines.majority...`)."""
    return {
        k: float(v)
        for k, v in _flat({**(results or {}), "schema_version": None})
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }


def tags_of(v: dict[str, Any]) -> dict[str, str]:
    """Where the version came from, as MLflow tags, and its tunelab tags (a key that would
    collide with MLflow's or tunelab's own goes under `tunelab.tag.`)."""
    lineage = v.get("lineage") or {}
    tags = {
        NAME_TAG: v["name"],
        VERSION_TAG: str(v["version"]),
        "tunelab.path": v["path"],
        "tunelab.kind": v["kind"],
        "tunelab.created": str(v["created"]),
    }
    if v["parent_version"] is not None:
        tags["tunelab.parent_version"] = str(v["parent_version"])
    for key in ("model_fingerprint", "served_version", "base_model", "model_tunelab_version"):
        if lineage.get(key) is not None:
            tags[f"tunelab.lineage.{key}"] = str(lineage[key])
    for key, data in (lineage.get("data") or {}).items():
        tags[f"tunelab.lineage.{key}.sha256"] = str(data.get("sha256") or "not found")
    for lib, number in (lineage.get("versions") or {}).items():
        tags[f"tunelab.versions.{lib}"] = str(number)
    for key, value in (v.get("tags") or {}).items():
        tags[f"tunelab.tag.{key}" if key.startswith(("mlflow.", "tunelab.")) else key] = value
    return {_BAD_KEY.sub("_", k): str(val)[:TAG_CHARS] for k, val in tags.items()}


@contextlib.contextmanager
def _quick_failures() -> Iterator[None]:
    """QUICK's settings for the mirror's calls."""
    added = {k: v for k, v in QUICK.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def _reachable(uri: str) -> None:
    """A quick look at an HTTP server's /health (any HTTP answer will do: it is up)."""
    import urllib.error
    import urllib.request

    if not uri.startswith(("http://", "https://")):
        return
    plain = re.sub(r"//[^/@]*@", "//", uri.rstrip("/"))  # urllib takes no user:password@
    try:
        with urllib.request.urlopen(f"{plain}/health", timeout=10):
            pass
    except urllib.error.HTTPError:
        pass
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        reason = _scrubbed(str(reason), uri)
        raise MirrorError(f"MLflow {shown_uri(uri)}: cannot reach the server ({reason})") from None


def _experiment(client, name: str) -> str:
    """The experiment's id, made if need be (restored if it was deleted: its name is taken)."""
    found = client.get_experiment_by_name(name)
    if found is None:
        return client.create_experiment(name)
    if found.lifecycle_stage == "deleted":
        client.restore_experiment(found.experiment_id)
    return found.experiment_id


def _registered_model(client, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_registered_model(
            name, tags={"tunelab.registry": "true"}, description="mirrored from tunelab"
        )


def _run_of(client, experiment: str, v: dict, tags: dict[str, str]) -> tuple[str, bool]:
    """(run id, made now) of version `v`'s run: the complete one already there, else a new
    one with its params, metrics and tags."""
    from mlflow.entities import Metric, Param, RunTag

    where = f"tags.`{NAME_TAG}` = '{v['name']}' and tags.`{VERSION_TAG}` = '{v['version']}'"
    for run in client.search_runs([experiment], filter_string=where):
        if run.data.tags.get(COMPLETE_TAG) == "true":
            stale = [RunTag(k, val) for k, val in tags.items() if run.data.tags.get(k) != val]
            if stale:
                client.log_batch(run.info.run_id, tags=stale)
            return run.info.run_id, False
        client.delete_run(run.info.run_id)  # half written by a mirror that failed
    start = int(v["created"] * 1000)
    run_id = client.create_run(
        experiment, start_time=start, tags=tags, run_name=f"{v['name']} v{v['version']}"
    ).info.run_id
    params = [Param(k, val) for k, val in params_of(v.get("config")).items()]
    for at in range(0, len(params), PARAMS_PER_CALL):
        client.log_batch(run_id, params=params[at : at + PARAMS_PER_CALL])
    metrics = [Metric(k, x, start, 0) for k, x in metrics_of(v.get("results")).items()]
    for at in range(0, len(metrics), METRICS_PER_CALL):
        client.log_batch(run_id, metrics=metrics[at : at + METRICS_PER_CALL])
    client.set_tag(run_id, COMPLETE_TAG, "true")
    client.set_terminated(run_id, "FINISHED", end_time=start)
    return run_id, True


def _model_version(client, v: dict, run_id: str, tags: dict[str, str], found) -> str:
    """The MLflow model version of `v` (`found`, its tags brought up to date, else new)."""
    if found is None:
        made = client.create_model_version(
            v["name"],
            source=f"runs:/{run_id}/model",
            run_id=run_id,
            tags=tags,
            description=f"tunelab {v['name']} version {v['version']}: {v['path']}",
        )
        return str(made.version)
    for key, value in tags.items():
        if found.tags.get(key) != value:
            client.set_model_version_tag(v["name"], found.version, key, value)
    return str(found.version)


def _sync(client, name: str, rows: list[dict], wanted: set[int], experiment: str) -> dict:
    experiment_id = _experiment(client, experiment)
    _registered_model(client, name)
    existing = {}
    for mv in client.search_model_versions(f"name = '{name}'"):
        number = (mv.tags or {}).get(VERSION_TAG)
        if number is not None and number not in existing:
            existing[number] = mv
    versions, created = {}, []
    for v in rows:
        if v["version"] not in wanted:
            continue
        tags = tags_of(v)
        run_id, new_run = _run_of(client, experiment_id, v, tags)
        found = existing.get(str(v["version"]))
        versions[v["version"]] = _model_version(client, v, run_id, tags, found)
        if new_run or found is None:
            created.append(v["version"])
    held = {alias: v["version"] for v in rows for alias in v["aliases"]}
    there = {a: str(n) for a, n in (client.get_registered_model(name).aliases or {}).items()}
    for alias, number in sorted(held.items()):
        if there.get(alias) != versions[number]:
            client.set_registered_model_alias(name, alias, versions[number])
    return {
        "name": name,
        "experiment": experiment,
        "versions": versions,
        "created": created,
        "aliases": {a: {"version": n, "mlflow_version": versions[n]} for a, n in held.items()},
    }


def mirror(
    engine: Engine,
    uri: str,
    name: str,
    versions: list[int] | None = None,
    experiment: str | None = None,
) -> dict[str, Any]:
    """Copy `name`'s versions (`versions`, or all of them) and its current aliases to the
    MLflow tracking server at `uri`; the versions the aliases point at are copied too, so the
    aliases always have their MLflow version. Idempotent. Returns {uri, name, experiment,
    versions: {tunelab N: MLflow version}, created: [tunelab N made now], aliases: {alias:
    {version, mlflow_version}}}. MirrorError (one line) when MLflow cannot be written;
    RegistryError for an unknown name (nothing is sent)."""
    from tunelab.store.registry import list_versions

    rows = list_versions(engine, name)
    wanted = {r["version"] for r in rows} if versions is None else set(versions)
    wanted |= {r["version"] for r in rows if r["aliases"]}
    shown = shown_uri(uri)
    with _quick_failures():
        _reachable(uri)
        try:
            from mlflow.tracking import MlflowClient

            report = _sync(
                MlflowClient(uri), name, rows, wanted, experiment or EXPERIMENT.format(name=name)
            )
        except MirrorError:
            raise
        except Exception as exc:  # MlflowException, requests' errors, a refused URI
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            raise MirrorError(f"MLflow {shown}: {_scrubbed(lines[0], uri)[:300]}") from None
    return {"uri": shown, **report}
