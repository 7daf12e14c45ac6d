"""Dequantize a .gguf model once and keep it as safetensors.

Loading a GGUF through `transformers` dequantizes every tensor (about 20 s for a 135M
model); the cache makes every later load a plain safetensors load.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from tunelab.errors import ModelSourceError
from tunelab.models.quiet import quiet_transformers
from tunelab.models.tokenizers import fix_special_tokens


def cache_root() -> Path:
    """`$TUNELAB_CACHE` or `~/.cache/tunelab`."""
    root = os.environ.get("TUNELAB_CACHE") or Path.home() / ".cache" / "tunelab"
    return Path(root)


def cached_dir(gguf: Path) -> Path:
    """Where the converted model for this exact file (path, size, mtime) lives."""
    st = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{st.st_size}|{int(st.st_mtime)}".encode()).hexdigest()[
        :16
    ]
    return cache_root() / "gguf" / f"{gguf.stem}-{key}"


def convert_gguf(gguf: Path) -> Path:
    """Return the cached safetensors dir for `gguf`, converting it first if needed."""
    out = cached_dir(gguf)
    if (out / "config.json").is_file():
        return out
    try:
        import gguf as _gguf  # noqa: F401  (transformers needs it to read the file)
    except ImportError:
        raise ModelSourceError(
            "reading .gguf models needs the 'gguf' package: pip install gguf"
        ) from None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"converting {gguf.name} to safetensors once (cached in {out}) ...", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".tmp-", dir=out.parent))
    try:
        with quiet_transformers():
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # A GGUF-loaded model carries a quantizer that refuses `save_pretrained`: copy the
        # dequantized weights into a plain model of the same config and save that.
        config = model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        fix_special_tokens(tok, config)
        plain = AutoModelForCausalLM.from_config(config, dtype=model.dtype)
        plain.load_state_dict(model.state_dict())
        plain.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        if out.exists():  # another process won the race
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, out)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, ModelSourceError):
            raise
        raise ModelSourceError(f"could not convert {gguf}: {exc}") from exc
    return out
