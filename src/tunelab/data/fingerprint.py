"""A fingerprint of a prepare stage's inputs and settings: same fingerprint, same output,
so a second `tunelab train` skips the stage."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def _hash_path(h, path: Path) -> None:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)


def fingerprint(inputs: dict[str, str], settings: dict) -> str:
    """sha256 over the input files' bytes and the settings (JSON, sorted keys)."""
    import tunelab

    h = hashlib.sha256()
    h.update(
        json.dumps(
            {"settings": settings, "version": tunelab.__version__}, sort_keys=True, default=str
        ).encode()
    )
    for split in sorted(inputs):
        h.update(split.encode())
        _hash_path(h, Path(inputs[split]))
    return h.hexdigest()
