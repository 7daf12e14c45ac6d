"""`tunelab registry add|list|show|promote|rollback|tag|mirror`: numbered versions of a model
name in the database beside the prediction log, with their lineage and eval results, and the
aliases (champion, challenger) that serving and retraining go by. With `--mlflow URI` (or
$TUNELAB_MLFLOW) each change is also copied to an MLflow tracking server. Thin:
store/registry.py and store/mlflow_mirror.py do the work, registry_format.py the tables."""

from __future__ import annotations

import argparse
import json
import sys

EXAMPLES = """examples:
  tunelab registry add sst2 runs/sst2 --alias champion     # version 1, the champion
  tunelab registry add sst2 runs/sst2-retrain              # version 2 (parent 1 if it started from the champion)
  tunelab registry add sst2 exports/sst2-onnx --parent 2   # an export folder is a version too
  tunelab registry list                                    # every model; list sst2: one model
  tunelab registry show sst2 champion --json               # lineage, config, results, tags, history
  tunelab registry promote sst2 2                          # champion -> version 2
  tunelab registry promote sst2 3 --alias challenger
  tunelab registry rollback sst2                           # champion back to the version before
  tunelab registry tag sst2 2 reviewed_by=ana
  tunelab registry list --db postgresql://user:pw@db/tunelab --json
  tunelab registry promote sst2 2 --mlflow http://mlflow:5000   # also on the MLflow server
  tunelab registry mirror sst2 --mlflow http://mlflow:5000      # every version and alias (re-sync)

References elsewhere (tunelab serve): champion@sst2, sst2@2, or sst2 (its champion).
--mlflow URI (default $TUNELAB_MLFLOW) on add, promote, rollback, tag and mirror copies the
change to MLflow: a run per version (params, metrics, tags), the registered model NAME with
one MLflow version per tunelab version (tag tunelab.registry.version) and the aliases.
The database stays the source of truth.
Exit codes: 0 done, 2 bad input (unknown model, version or alias; not a run or export folder;
a database that cannot be opened), with one line on stderr and nothing written; 5 done in the
database but the MLflow mirror failed (stderr names the re-sync command: tunelab registry
mirror NAME --mlflow URI).
Docs: docs/registry.md."""

CHANGES = ("add", "promote", "rollback", "tag")  # actions that change the registry
MIRRORED = (*CHANGES, "mirror")  # the actions that take --mlflow

# no argument here has the dest `version`: the namespace is shared with `tunelab --version`


def _common() -> argparse.ArgumentParser:
    """--db and --json, on every sub-command (so they go after it, like other flags)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        metavar="URL",
        help="the database the prediction log is in (default: $TUNELAB_DB, else "
        "sqlite:///tunelab.db)",
    )
    common.add_argument("--json", action="store_true", help="print the result as JSON")
    return common


def _mirror_flags() -> argparse.ArgumentParser:
    """--mlflow and --mlflow-experiment, on the actions that change the registry (and mirror)."""
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument(
        "--mlflow",
        metavar="URI",
        help="also copy the change to this MLflow tracking server (default: $TUNELAB_MLFLOW; "
        "none: no mirror)",
    )
    flags.add_argument(
        "--mlflow-experiment",
        metavar="NAME",
        help="the MLflow experiment of the versions' runs (default: tunelab-registry/NAME)",
    )
    return flags


def add_parser(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    r = sub.add_parser(
        "registry",
        help="versions of a model with lineage and results; champion/challenger aliases",
        description="The model registry (docs/registry.md).",
        epilog=EXAMPLES,
        formatter_class=fmt,
    )
    actions = r.add_subparsers(dest="registry_command", metavar="ACTION", required=True)
    common = [_common()]
    mirrored = [*common, _mirror_flags()]

    a = actions.add_parser(
        "add", parents=mirrored, help="register a run or export folder as the next version"
    )
    a.add_argument("name", metavar="NAME", help="the model name (letters, digits, . _ -)")
    a.add_argument("path", metavar="RUN_OR_EXPORT", help="a run folder or an export folder")
    a.add_argument("--alias", help="point this alias (champion, challenger) at the new version")
    a.add_argument(
        "--parent",
        type=int,
        metavar="N",
        help="the version it was fine-tuned from (default: the champion, when the run's "
        "config starts from the champion's model)",
    )

    ls = actions.add_parser("list", parents=common, help="the versions of one or every model")
    ls.add_argument("name", metavar="NAME", nargs="?", help="one model (default: all)")

    show = actions.add_parser("show", parents=common, help="one version in full")
    show.add_argument("name", metavar="NAME")
    show.add_argument(
        "which",
        metavar="VERSION|ALIAS",
        nargs="?",
        help="a version number or an alias (default: the champion, else the newest)",
    )

    p = actions.add_parser("promote", parents=mirrored, help="point an alias at a version")
    p.add_argument("name", metavar="NAME")
    p.add_argument("which", metavar="VERSION", help="a version number, or an alias (challenger)")
    p.add_argument("--alias", default="champion", help="the alias to move (default: champion)")

    rb = actions.add_parser(
        "rollback", parents=mirrored, help="point an alias back at its previous version"
    )
    rb.add_argument("name", metavar="NAME")
    rb.add_argument(
        "--alias", default="champion", help="the alias to move back (default: champion)"
    )

    t = actions.add_parser("tag", parents=mirrored, help="set a tag on a version")
    t.add_argument("name", metavar="NAME")
    t.add_argument("which", metavar="VERSION", help="a version number or an alias")
    t.add_argument("tag", metavar="KEY=VALUE")

    m = actions.add_parser(
        "mirror",
        parents=mirrored,
        help="copy every version and alias of a model to MLflow (repairs a failed mirror)",
    )
    m.add_argument("name", metavar="NAME")


def _key_value(text: str) -> tuple[str, str]:
    from tunelab.errors import ConfigError

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError("KEY=VALUE", "give the tag as KEY=VALUE", text, has_value=True)
    return key.strip(), value


def _check(args) -> None:
    """What can be checked without the database: names, the tag, the folder to add."""
    from tunelab.store.aliases import check_name

    if getattr(args, "name", None) is not None:
        check_name(args.name, "model name")
    if getattr(args, "alias", None):
        check_name(args.alias, "alias")
    if args.registry_command == "tag":
        _key_value(args.tag)
    if args.registry_command == "add":
        from tunelab.store.lineage import check_folder

        check_folder(args.path)  # a bad path: one line, and no database file is created
    if args.registry_command in MIRRORED:  # --mlflow: the URI, and mlflow installed
        from tunelab.store import mlflow_mirror

        uri = mlflow_mirror.mlflow_uri(args.mlflow)
        if uri is None and args.registry_command == "mirror":
            from tunelab.errors import ConfigError

            raise ConfigError("--mlflow", "give the MLflow tracking URI (or set TUNELAB_MLFLOW)")
        if uri is not None:
            mlflow_mirror.check_uri(uri)  # before anything is written


def _run(engine, args):
    """The action's result (what --json prints) and its human form."""
    from tunelab.cli import registry_format as show
    from tunelab.store import registry

    name, action = args.name, args.registry_command
    if action == "add":
        v = registry.add_version(engine, name, args.path, alias=args.alias, parent=args.parent)
        return v, show.added(v)
    if action == "list":
        rows = registry.list_versions(engine, name)
        return rows, show.version_table(rows)
    if action == "show":
        v = registry.get_version(engine, name, args.which)
        v["history"] = registry.alias_history(engine, name)
        return v, show.version_page(v)
    if action == "promote":
        moved = registry.promote(engine, name, args.which, alias=args.alias)
        return moved, show.moved(moved, "promote")
    if action == "rollback":
        moved = registry.rollback(engine, name, alias=args.alias)
        return moved, show.moved(moved, "rollback")
    if action == "mirror":
        report = _mirror(engine, args, None)
        return report, show.mirrored(report)
    key, value = _key_value(args.tag)
    v = registry.tag(engine, name, args.which, key, value)
    return v, show.tagged(v, key)


def _mirror(engine, args, versions: list[int] | None) -> dict:
    from tunelab.store import mlflow_mirror

    uri = mlflow_mirror.mlflow_uri(args.mlflow)
    return mlflow_mirror.mirror(
        engine, uri, args.name, versions=versions, experiment=args.mlflow_experiment
    )


def _mirror_after(engine, args, result: dict, text: str):
    """Copy what the action changed to MLflow, when asked. (result, text, the one-line
    failure or None): a failed mirror leaves the database change in place."""
    from tunelab.cli import registry_format as show
    from tunelab.store import mlflow_mirror

    if args.registry_command not in CHANGES:  # list and show have no --mlflow
        return result, text, None
    uri = mlflow_mirror.mlflow_uri(args.mlflow)
    if uri is None:
        return result, text, None
    try:
        report = _mirror(engine, args, [result["version"]])
    except mlflow_mirror.MirrorError as exc:
        again = mlflow_mirror.resync_command(args.name, uri, args.db)
        failure = (
            f"{args.name}: done in the registry database, but not mirrored: {exc}. "
            f"Re-sync with: {again}"
        )
        return {**result, "mlflow": {"error": str(exc), "resync": again}}, text, failure
    return {**result, "mlflow": report}, f"{text}\n{show.mirrored(report)}", None


def main(args) -> int:
    from tunelab.store.db import database_url, open_db
    from tunelab.store.mlflow_mirror import MirrorError

    _check(args)
    engine = open_db(database_url(args.db))  # StoreError: one line naming the database
    try:
        result, text = _run(engine, args)
        result, text, failure = _mirror_after(engine, args, result, text)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(text)
    sys.stdout.flush()
    if failure is not None:
        print(f"error: {failure}", file=sys.stderr)
        return MirrorError.exit_code
    return 0
