"""`tunelab export`: one trained run -> one folder per format, each checked against the run.

Every format is written into a temp folder beside its destination, checked (verify.py),
given a model card (README.md) and export.json (files, sizes, the check's figures), and
only then renamed into place: an export that fails its check leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from tunelab.atomic import atomic_dir, atomic_write_json
from tunelab.errors import ConfigError, RunDirError
from tunelab.export.source import Source
from tunelab.export.verify import ExportError

FORMATS = ("merged", "adapter", "onnx", "int8", "gguf")


def parse_formats(formats: str | list[str]) -> list[str]:
    """'onnx,int8' or ['merged', 'onnx,int8'] -> ['merged', 'onnx', 'int8'] (checked, no repeats)."""
    items = [formats] if isinstance(formats, str) else list(formats)
    out: list[str] = []
    for item in items:
        for name in (p.strip().lower() for p in str(item).split(",")):
            if not name:
                continue
            if name not in FORMATS:
                raise ConfigError(
                    "--format", f"unknown format '{name}'; choose from {', '.join(FORMATS)}"
                )
            if name not in out:
                out.append(name)
    if not out:
        raise ConfigError("--format", f"give at least one of {', '.join(FORMATS)}")
    return out


def destinations(src: Source, formats: list[str], output: str | Path | None) -> dict[str, Path]:
    """One format: `output` itself (default RUN/export/<format>); several: output/<format>."""
    if output is not None and len(formats) == 1:
        return {formats[0]: Path(output)}
    root = Path(output) if output is not None else (src.run_dir or src.model_dir.parent) / "export"
    return {fmt: root / fmt for fmt in formats}


def fits(src: Source, fmt: str) -> None:
    """Raise ExportError when `fmt` does not fit the run, before anything is written."""
    from tunelab.export.gguf import require_llama
    from tunelab.export.onnx import require_encoder

    if fmt in ("onnx", "int8"):
        require_encoder(src, fmt)
    elif fmt == "gguf":
        require_llama(src)
    elif fmt == "adapter" and src.adapter_dir is None:
        raise ExportError(
            f"--format adapter: a '{src.method}' run trains the model's own weights and has no "
            "adapter; --format merged fits it"
        )
    elif fmt == "merged" and src.method in ("adapter", "prefix", "prompt"):
        raise ExportError(
            f"--format merged: a '{src.method}' run's update cannot be folded into the base "
            "weights; --format adapter fits it"
        )


def export_run(
    run: str | Path,
    formats: str | list[str],
    *,
    output: str | Path | None = None,
    quant: str = "f16",
    overwrite: bool = False,
    rows: int | None = 64,
    threads: int = 1,
    repeats: int = 5,
) -> dict[str, dict]:
    """Export `run` (a run or model folder) in each of `formats`; {format: export.json}."""
    formats = parse_formats(formats)
    src = Source.open(run, limit=rows)
    dests = destinations(src, formats, output)
    for dest in dests.values():
        if dest.exists() and not overwrite:
            raise RunDirError(f"{dest} exists; pass --overwrite to replace it")
    for fmt in formats:
        fits(src, fmt)
    records = {}
    try:
        for fmt, dest in dests.items():
            records[fmt] = _export_one(
                src, fmt, dest, quant=quant, threads=threads, repeats=repeats
            )
    finally:
        src.close()
    return records


def _export_one(src: Source, fmt: str, dest: Path, **options) -> dict:
    from tunelab.export.card import model_card

    created = [p for p in [dest.parent, *dest.parent.parents] if not p.exists()]
    try:
        with atomic_dir(dest) as tmp:
            figures = _write(src, fmt, tmp, **options)
            (tmp / "README.md").write_text(model_card(src, fmt, dest, figures), encoding="utf-8")
            record = _record(src, fmt, dest, tmp, figures)
            atomic_write_json(tmp / "export.json", record)
            _readable(tmp)
    except BaseException:
        for p in created:  # parents made for this export, if still empty
            if p.is_dir() and not any(p.iterdir()):
                shutil.rmtree(p, ignore_errors=True)
        raise
    return record


def _readable(folder: Path) -> None:
    """Temp folders and files are created private (0700 / 0600); an export is for sharing
    and serving, so give it the modes the umask allows (typically 0755 / 0644)."""
    import os

    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for p in folder.iterdir():
        if p.is_file():
            p.chmod(0o666 & ~umask)


def _write(src: Source, fmt: str, out: Path, *, quant: str, threads: int, repeats: int) -> dict:
    if fmt == "merged":
        from tunelab.export.merged import export_merged

        return export_merged(src, out)
    if fmt == "adapter":
        from tunelab.export.merged import export_adapter

        return export_adapter(src, out)
    if fmt == "onnx":
        from tunelab.export.onnx import export_onnx

        return export_onnx(src, out)
    if fmt == "int8":
        from tunelab.export.int8 import export_int8

        return export_int8(src, out, threads=threads, repeats=repeats)
    from tunelab.export.gguf import export_gguf

    return export_gguf(src, out, quant)


def _record(src: Source, fmt: str, dest: Path, tmp: Path, figures: dict) -> dict:
    import tunelab

    files = {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}
    weights = (".safetensors", ".onnx", ".gguf")
    return {
        "format": fmt,
        "source": str(src.path),
        "output": str(dest),
        "task": src.task,
        "method": src.method,
        "base_model": src.meta.base_model,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "tunelab_version": tunelab.__version__,
        "files": files,
        "weights_mb": round(sum(s for n, s in files.items() if n.endswith(weights)) / 2**20, 3),
        "check": figures,
    }
