"""The run directory: refuse to clobber another run, write files atomically.

The user-level config of a run is kept in `checkpoints/config.json`; it decides whether an
output folder holds "this run" (resume allowed) or a different one (refused without
`--overwrite`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tunelab.atomic import atomic_write_text
from tunelab.config.legacy import note_upgrade, upgrade_method
from tunelab.config.schema import RunConfig
from tunelab.errors import RunDirError

FINGERPRINT = Path("checkpoints") / "config.json"


def user_config(cfg: RunConfig) -> dict:
    return cfg.model_dump(mode="json", exclude={"versions", "search"})  # train ignores search


def _first_difference(a, b, prefix: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
            if found:
                return found
        return None
    return None if a == b else f"{prefix.rstrip('.')} ({a!r} there, {b!r} now)"


def _stored(stamp: Path) -> dict:
    """The fingerprint of the run there, as this tunelab dumps it: keys added since hold their
    defaults, and one written before methods had their own sections is read without the other
    methods' default keys (config/legacy.py). One that no longer validates is compared as is."""
    stored = json.loads(stamp.read_text())
    note_upgrade(stamp, upgrade_method(stored))
    try:
        return user_config(RunConfig.model_validate(stored))
    except ValueError:  # pydantic's ValidationError: the comparison names the difference
        return stored


def _nothing_to_resume(run_dir: Path) -> bool:
    """No checkpoint and no saved model: the run never got far enough to leave anything."""
    return not any((run_dir / "checkpoints").glob("step-*")) and not (run_dir / "model").exists()


def prepare_run_dir(run_dir: Path, cfg: RunConfig, *, overwrite: bool, resume: bool) -> None:
    """Create `run_dir`, or check that resuming/overwriting it is what the user asked for."""
    stamp = run_dir / FINGERPRINT
    current = user_config(cfg)
    if resume:
        if not stamp.is_file():
            raise RunDirError(
                f"{run_dir}: nothing to resume (no checkpoints/config.json); drop --resume"
            )
        diff = _first_difference(_stored(stamp), current)
        if diff:
            raise RunDirError(f"{run_dir}: cannot resume, the config differs at {diff}")
        return
    if run_dir.exists() and any(run_dir.iterdir()):
        if overwrite:
            shutil.rmtree(run_dir)
        elif stamp.is_file():
            diff = _first_difference(_stored(stamp), current)
            if _nothing_to_resume(run_dir):
                # An earlier try failed before its first checkpoint (weights that did not load,
                # a setting the model refused): nothing there to lose or resume, so start
                # afresh, with the config as fixed or as it was.
                shutil.rmtree(run_dir)
            else:
                what = f"a different run (config differs at {diff})" if diff else "this run already"
                raise RunDirError(
                    f"output '{run_dir}' holds {what}; use --resume to continue it, --overwrite to replace it, "
                    "or set output= to another folder"
                )
        else:
            raise RunDirError(
                f"output '{run_dir}' is not empty and holds no tunelab run; use --overwrite or another folder"
            )
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    atomic_write_text(stamp, json.dumps(current, indent=2))
