"""tunelab: fine-tune pretrained language models and take them to production.

Kept import-light: heavy libraries (torch, transformers) load inside the functions that
need them so that `import tunelab` and `tunelab --help` stay fast.
"""

__version__ = "0.1.0"

from tunelab.errors import TunelabError  # noqa: E402

__all__ = ["TunelabError", "__version__"]
