"""`retrain:` settings of `tunelab retrain` (the `retrain:` key of its --config file; every
other key of that file overrides the champion's run config for the challenger)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RetrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    heldout: float = Field(
        0.3, gt=0, lt=1, description="share of the feedback-labelled rows held out for the gate"
    )
    validation: float = Field(
        0.1, ge=0, lt=1, description="share of them for the challenger's validation split"
    )
    replay_ratio: float = Field(
        0.3,
        ge=0,
        lt=1,
        description="share of the challenger's training rows replayed from the "
        "champion's own training data (continual procedure)",
    )
    margin: float = Field(
        0.02,
        ge=0,
        description="how far the challenger may fall below the champion on the old "
        "test set and the golden sets (the interval's lower end) and still pass; it must be wider "
        "than the interval's half-width there (about 0.013 on 1,000 rows at 85% accuracy), or "
        "even an unchanged model fails",
    )
    metric: str | None = Field(
        None,
        description="the metric the gate compares (default: accuracy, else the first "
        "headline metric of the task)",
    )
    golden: list[str] = Field(default_factory=list, description="golden sets: labelled files")
    min_rows: int = Field(
        20, ge=2, description="fewer feedback-labelled rows than this: nothing to do"
    )
    bootstrap: int = Field(1000, ge=100, description="paired bootstrap resamples")
    seed: int = 0
