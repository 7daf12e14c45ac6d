"""Model sources (packaged alias, local dir, hub id, .gguf) and loading per task."""

from tunelab.models.sources import PACKAGED, ModelSource, resolve_model

__all__ = ["PACKAGED", "ModelSource", "resolve_model"]
