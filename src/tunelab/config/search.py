"""The `search:` section of a run config: what `tunelab tune` searches over.

`tunelab train` ignores it. Keys of `space` are dotted config paths (`train.lr`); each
trial is one run with the sampled values set at those paths. Paths and the values they can
take are checked against the rest of the config by `tunelab.search.check_space` before any
trial runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class FloatParam(_Strict):
    type: Literal["float"]
    low: float
    high: float
    log: bool = Field(False, description="sample on a log scale (low must be > 0)")
    step: float | None = Field(None, gt=0, description="discretize; not with log")

    @model_validator(mode="after")
    def _check(self) -> FloatParam:
        _check_range(self.low, self.high, self.log, self.step)
        return self


class IntParam(_Strict):
    type: Literal["int"]
    low: int
    high: int
    log: bool = Field(False, description="sample on a log scale (low must be > 0)")
    step: int = Field(1, gt=0, description="not with log (must be 1 there)")

    @model_validator(mode="after")
    def _check(self) -> IntParam:
        _check_range(self.low, self.high, self.log, None if self.step == 1 else self.step)
        return self


class CategoricalParam(_Strict):
    type: Literal["categorical"]
    choices: list[Any] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> CategoricalParam:
        for c in self.choices:
            if not (c is None or isinstance(c, (bool, int, float, str))):
                raise ValueError(f"choices: each must be a number, string, bool or null, got {c!r}")
        return self


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    if low > high:
        raise ValueError(f"low ({low:g}) must be <= high ({high:g})")
    if log and low <= 0:
        raise ValueError(f"log: needs low > 0, got low={low:g}")
    if log and step is not None:
        raise ValueError("step: cannot be combined with log")


PARAM_TYPES = ("float", "int", "categorical")
Param = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


class SearchConfig(_Strict):
    """Hyperparameter search (`tunelab tune`); ignored by `tunelab train`."""

    metric: str | None = Field(
        None, description="validation metric to optimize; None: train.early_stopping.metric"
    )
    direction: Literal["maximize", "minimize"] | None = Field(
        None, description="None: from the metric (losses and perplexity minimize)"
    )
    sampler: Literal["tpe", "random"] = "tpe"
    pruner: Literal["median", "none"] = Field(
        "median",
        description="median: stop a trial whose validation metric is below the median of "
        "earlier trials at the same evaluation",
    )
    startup_trials: int | None = Field(
        None,
        ge=0,
        description="trials before TPE models the space and before the pruner acts; "
        "None: min(10, max(1, trials // 3))",
    )
    seed: int | None = Field(None, description="sampler seed; None: train.seed")
    space: dict[str, Param] = Field(
        min_length=1,
        description="dotted config path -> {type: float|int|categorical, low, high, log, "
        "step | choices}",
    )
