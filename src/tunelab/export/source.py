"""What an export starts from: a run folder (or a model folder) and the trained model in it.

The source model is loaded once, the way `tunelab predict` loads it (`load_trained`), and
its outputs on the held-out inputs are computed once; every format is checked against them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from tunelab.config.model_meta import ModelMeta, model_meta
from tunelab.config.run_result import RESULTS_FILE, read_run_result
from tunelab.export.verify import (
    ExportError,
    Heldout,
    batched_logits,
    encode,
    heldout_inputs,
    lm_outputs,
    torch_runner,
)
from tunelab.tasks import Task, get_task

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
PEFT_PROMPT_METHODS = ("prefix", "prompt")


@dataclass
class Source:
    """A trained model to export. `run_dir` is None for a bare model folder."""

    path: Path  # as the user gave it
    model_dir: Path
    run_dir: Path | None
    meta: ModelMeta  # tunelab.json (the defaults for a plain folder); a dict is read into one
    limit: int | None = 64  # held-out rows for the checks
    _cache: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.meta = model_meta(self.meta)

    @classmethod
    def open(cls, path: str | Path, limit: int | None = 64) -> Source:
        from tunelab.methods.loading import read_meta, resolve_model_dir

        model_dir = resolve_model_dir(path)
        run_dir = model_dir.parent if (model_dir.parent / "config.yaml").is_file() else None
        if (Path(path) / "config.yaml").is_file():
            run_dir = Path(path)
        return cls(Path(path), model_dir, run_dir, read_meta(model_dir) or ModelMeta(), limit)

    def scratch(self) -> Path:
        """A private temp folder for files several formats share (the fp32 ONNX model);
        removed by close(), or when the Source is garbage-collected."""
        if "scratch" not in self._cache:
            import shutil
            import tempfile
            import weakref

            path = Path(tempfile.mkdtemp(prefix="tunelab-export-"))
            self._cache["scratch"] = path
            self._cache["scratch_cleanup"] = weakref.finalize(self, shutil.rmtree, path, True)
        return self._cache["scratch"]

    def close(self) -> None:
        """Remove the scratch folder (and what the cache holds from it)."""
        cleanup = self._cache.pop("scratch_cleanup", None)
        if cleanup is not None:
            cleanup()
            self._cache.pop("scratch", None)
            self._cache.pop("onnx", None)

    @property
    def task(self) -> str:
        return self.meta.task

    @property
    def spec(self) -> Task:
        """The Task the model was trained for (its head kind decides the formats and checks)."""
        return get_task(self.task)

    @property
    def method(self) -> str:
        return self.meta.method

    @property
    def adapter_dir(self) -> Path | None:
        """The trained update alone: the run's adapter/ (merged runs), or model/ itself."""
        from tunelab.models.sources import ADAPTER_FILES

        for d in (self.run_dir / "adapter" if self.run_dir else None, self.model_dir):
            if d is not None and any((d / f).is_file() for f in ADAPTER_FILES):
                return d
        return None

    @cached_property
    def trained(self):
        """The source model as `tunelab predict` loads it (TrainedModel, eval mode)."""
        from tunelab.methods.loading import load_trained

        return load_trained(self.model_dir)

    @cached_property
    def results(self) -> dict:
        """The run's results.json (validated: a broken one is an error naming the field),
        {} for a bare model folder."""
        f = self.run_dir / RESULTS_FILE if self.run_dir else None
        return read_run_result(self.run_dir).to_dict() if f and f.is_file() else {}

    @cached_property
    def held(self) -> Heldout:
        return heldout_inputs(self.run_dir, self.meta, self.limit)

    def plain_model(self):
        """The source as one plain transformers model (a peft update merged in, in memory).
        A fresh copy of `trained` each call: merging and exporting must not touch it, and a
        copy (not a second load from disk) has the very weights the reference logits came
        from, also where the folder has no head and loading draws a random one."""
        import copy

        model = copy.deepcopy(self.trained.model)
        if hasattr(model, "merge_and_unload"):
            if self.method in PEFT_PROMPT_METHODS:
                raise ExportError(
                    f"a {self.method}-tuning run's learned tokens cannot be folded into the "
                    "model; --format adapter fits it"
                )
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                model = model.merge_and_unload(safe_merge=True)
        return model.eval()

    def input_names(self, tokenizer=None) -> list[str]:
        """The tokenizer outputs the model takes (token_type_ids only where it has them)."""
        tok = tokenizer or self.trained.tokenizer
        return [n for n in INPUT_NAMES if n in tok.model_input_names]

    def feeds(self) -> dict[str, np.ndarray]:
        """The held-out inputs, encoded: {name: (N, T) int64}."""
        if "feeds" not in self._cache:
            t = self.trained
            feeds = encode(t.tokenizer, self.held, t.max_length, self.input_names())
            if self.spec.head_kind == "encoder-decoder":
                # score the first decoder step: (N, 1, V) logits
                start = t.model.config.decoder_start_token_id or 0
                feeds["decoder_input_ids"] = np.full((len(self.held), 1), start, np.int64)
            self._cache["feeds"] = feeds
        return self._cache["feeds"]

    def reference(self) -> np.ndarray:
        """The source's logits on the held-out inputs: (N, C), or (N, T, C) for tokens."""
        if "logits" not in self._cache:
            self._cache["logits"] = batched_logits(torch_runner(self.trained.model), self.feeds())
        return self._cache["logits"]

    def token_mask(self) -> np.ndarray | None:
        """(N, T) real-token mask for per-token logits, None for one output per row."""
        if self.spec.head_kind in ("token", "masked"):
            return self.feeds()["attention_mask"]
        return None

    def lm_reference(self) -> tuple:
        """lm_outputs of the source on the held-out prompts."""
        if "lm" not in self._cache:
            t = self.trained
            self._cache["lm"] = lm_outputs(t.model, t.tokenizer, self.held.texts)
        return self._cache["lm"]
