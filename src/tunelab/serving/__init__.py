"""`tunelab serve`: an HTTP server for tuned models.

registry.py loads the models by name (LoRA adapters share their base), engine.py decodes
concurrent generation requests in one continuously batched loop, batcher.py groups
classification/tagging requests into one forward pass, app.py + routes.py are the FastAPI
app (OpenAI-compatible routes, /v1/classify, /v1/entities, /health, /ready, /metrics),
auth.py and limits.py keep it safe. FastAPI and uvicorn are imported only here, lazily.
"""

from __future__ import annotations

from tunelab.serving.registry import Registry, ServedModel

__all__ = ["Registry", "ServedModel", "create_app", "Settings"]


def __getattr__(name):  # create_app / Settings pull in FastAPI: only on use
    if name in ("create_app", "Settings"):
        from tunelab.serving import app

        return getattr(app, name)
    raise AttributeError(name)
