"""The Hugging Face Hub code path: used where the hub is reachable, a fast clear error where not."""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from urllib.parse import urlparse

from tunelab.errors import ModelSourceError


@lru_cache(maxsize=1)
def hub_reachable(timeout: float = 3.0) -> bool:
    """One TCP connect to the hub endpoint; False when offline mode is set or it fails."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def is_cached(repo_id: str) -> bool:
    """True when an earlier download left this model in the local HF cache."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json")
    return isinstance(found, str)


def check_hub_model(repo_id: str) -> bool:
    """Return whether to load with `local_files_only`; raise when the model can't be had."""
    if is_cached(repo_id):
        return not hub_reachable()
    if hub_reachable():
        return False
    raise ModelSourceError(
        f"'{repo_id}' is not a packaged alias, a local folder or a .gguf file, and the Hugging Face "
        "Hub is not reachable from here (nor is the model in the local HF cache). "
        "Use a packaged alias (see `tunelab models`), a local model folder, or a .gguf file."
    )
