"""What a registered model version records about itself: which folder it is, what it was
trained on and with, and how it scored.

Read once, when the version is added, so the registry keeps the lineage even after the run
folder or its data change or go away: the run's config.yaml, the sha256 of each data file
that config names (as found at that moment; a file that is gone is recorded as missing), the
tunelab and library versions the run recorded (else the installed ones, marked so), a
fingerprint of the model folder (the one `tunelab serve` logs as `version`) and results.json.
Nothing here loads weights.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
from pathlib import Path
from typing import Any

from tunelab.errors import TunelabError

KINDS = ("run", "export")
# the config keys that name data files: data.*, and the continual procedure's earlier data
DATA_SPLITS = ("train", "validation", "test")
PROCEDURE_DATA = ("replay", "old_validation")
LIBRARIES = ("torch", "transformers", "peft", "accelerate", "scikit-learn")


class FolderError(TunelabError):
    """The path is not a run folder or a model/export folder; the message names it."""


def folder_version(path: str | Path) -> str:
    """A short fingerprint of a folder (file names, sizes, mtimes; tunelab.json's bytes).

    serving/prediction_log.model_version calls this: it is the `version` the prediction log
    records for rows served from this folder, so a logged row can be traced back to its
    registered version."""
    h = hashlib.sha256()
    folder = Path(path)
    if folder.is_dir():
        for f in sorted(p for p in folder.rglob("*") if p.is_file()):
            st = f.stat()
            h.update(f"{f.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        meta = folder / "tunelab.json"
        if meta.is_file():
            h.update(meta.read_bytes())
    else:
        h.update(str(path).encode())
    return h.hexdigest()[:12]


def file_sha256(path: Path) -> str:
    """sha256 hex of a file's bytes, or of a folder's files (names and bytes, sorted): an HF
    datasets folder is a data "file" too."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\0")
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def check_folder(path: str | Path) -> tuple[str, Path, Path]:
    """(kind, the folder as an absolute path, its model folder). A run folder holds
    config.yaml and model/tunelab.json; a model or export folder holds tunelab.json. Anything
    else is a FolderError that names the path, before any database is touched."""
    from tunelab.methods.loading import read_meta, resolve_model_dir

    folder = Path(path).expanduser()
    if not folder.is_dir():
        what = "not a folder" if folder.exists() else "no such folder"
        raise FolderError(f"{path}: {what} (give a run folder or an export folder)")
    folder = folder.resolve()
    try:
        model_dir = resolve_model_dir(folder)
        meta = read_meta(folder)
    except TunelabError as exc:
        raise FolderError(f"{path}: {exc}") from None
    if meta is None:
        raise FolderError(
            f"{path}: not a tunelab run or export folder (no config.yaml with model/tunelab.json, "
            "no tunelab.json)"
        )
    is_run = (folder / "config.yaml").is_file() and model_dir != folder
    return ("run" if is_run else "export"), folder, model_dir


def run_dir_of(folder: Path, model_dir: Path) -> Path | None:
    """The run folder behind `folder`: itself, the model folder's parent (run/model), or the
    run an export was made from (its export.json's `source`, when that is still there)."""
    candidates = [folder, model_dir.parent]
    export = folder / "export.json"
    if export.is_file():
        try:
            source = json.loads(export.read_text(encoding="utf-8")).get("source")
        except (OSError, ValueError):
            source = None
        if isinstance(source, str):
            candidates.append(Path(source).expanduser())
    for candidate in candidates:
        if (candidate / "config.yaml").is_file():
            return candidate.resolve()
    return None


def read_config(run_dir: Path | None) -> dict | None:
    """The run's config.yaml as written (no validation: a version registered today must
    still show after the schema moves on)."""
    import yaml

    if run_dir is None:
        return None
    try:
        raw = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())  # YAML errors span lines; the message is one
        raise FolderError(
            f"{run_dir / 'config.yaml'}: cannot read the run's config ({reason})"
        ) from None
    return raw if isinstance(raw, dict) else None


def read_results(run_dir: Path | None) -> dict | None:
    """results.json through its schema (RunResult): a broken one is an error naming the file;
    None when the run has none."""
    from tunelab.config.run_result import RESULTS_FILE, read_run_result

    if run_dir is None or not (run_dir / RESULTS_FILE).is_file():
        return None
    return read_run_result(run_dir).to_dict()


def data_files(config: dict | None) -> dict[str, str]:
    """{dotted config key: path} of each data file the config names."""
    out: dict[str, str] = {}
    if not config:
        return out
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    for split in DATA_SPLITS:
        if isinstance(data.get(split), str):
            out[f"data.{split}"] = data[split]
    procedure = config.get("procedure") if isinstance(config.get("procedure"), dict) else {}
    for key in PROCEDURE_DATA:
        if isinstance(procedure.get(key), str):
            out[f"procedure.{key}"] = procedure[key]
    for i, task in enumerate(procedure.get("tasks") or []):
        task_data = task.get("data") if isinstance(task, dict) else None
        for split in DATA_SPLITS:
            if isinstance(task_data, dict) and isinstance(task_data.get(split), str):
                out[f"procedure.tasks.{task.get('name', i)}.data.{split}"] = task_data[split]
    return out


def _found(path: str, run_dir: Path | None) -> Path | None:
    """The file as the run named it: relative to here, else to the run folder's parent."""
    for base in (Path.cwd(), run_dir.parent if run_dir else None):
        if base is not None:
            candidate = (base / Path(path).expanduser()).resolve()
            if candidate.exists():
                return candidate
    return None


def data_fingerprints(config: dict | None, run_dir: Path | None) -> dict[str, dict]:
    """{config key: {path, found (absolute or None), sha256 (None: not found)}}."""
    out = {}
    for key, path in data_files(config).items():
        found = _found(path, run_dir)
        out[key] = {
            "path": path,
            "found": str(found) if found else None,
            "sha256": file_sha256(found) if found else None,
        }
    return out


def installed_versions() -> dict[str, str]:
    """tunelab's, Python's and the main libraries' versions in this environment."""
    import importlib.metadata as md

    import tunelab

    out = {"tunelab": tunelab.__version__, "python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def finite(value: Any) -> Any:
    """`value` with NaN and infinite floats as None, recursively: PostgreSQL's JSON refuses
    them, and a run's results can hold a NaN loss."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def describe(path: str | Path) -> dict[str, Any]:
    """Everything a new version records: {kind, path, model_dir, run_dir, config, results,
    lineage}. FolderError (or the OutputFileError of a broken results.json) on bad input."""
    from tunelab.methods.loading import read_meta

    kind, folder, model_dir = check_folder(path)
    run_dir = run_dir_of(folder, model_dir)
    config = read_config(run_dir)
    recorded = (config or {}).get("versions")
    meta = read_meta(model_dir)
    lineage = {
        "run_dir": str(run_dir) if run_dir else None,
        "model_dir": str(model_dir),
        "base_model": (config or {}).get("model") or meta.base_model,
        "data": data_fingerprints(config, run_dir),
        "versions": recorded if isinstance(recorded, dict) else installed_versions(),
        "versions_from": "run" if isinstance(recorded, dict) else "installed",
        "model_tunelab_version": meta.tunelab_version,
        "model_fingerprint": folder_version(model_dir),
        "served_version": folder_version(folder),
    }
    return {
        "kind": kind,
        "path": str(folder),
        "model_dir": model_dir,
        "run_dir": run_dir,
        "config": finite(config),
        "results": finite(read_results(run_dir)),
        "lineage": lineage,
    }


def fine_tuned_from(description: dict, candidate_path: str) -> bool:
    """Whether the described run started from the model at `candidate_path` (a registered
    version's folder): its config's `model:` (or tunelab.json's base_model) is that folder or
    its model folder, by path or by fingerprint."""
    from tunelab.methods.loading import resolve_model_dir

    start = description["lineage"].get("base_model")
    run_dir = description["run_dir"]
    if not isinstance(start, str):
        return False
    found = _found(start, run_dir)
    if found is None or not found.is_dir():
        return False
    candidate = Path(candidate_path)
    if not candidate.is_dir():
        return False
    try:
        candidate_model = resolve_model_dir(candidate).resolve()
        found_model = resolve_model_dir(found).resolve()
    except TunelabError:
        return False
    if found in (candidate.resolve(), candidate_model) or found_model == candidate_model:
        return True
    return folder_version(found_model) == folder_version(candidate_model)
