"""Generation settings: `generation:` in a run config (seq2seq eval, causal-lm samples) and the
flags of `tunelab generate` / `tunelab chat`, in one place."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class GenerationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    max_new_tokens: int = Field(128, gt=0)
    temperature: float = Field(
        0.0, ge=0, description="0: greedy (or beam search); > 0: sampling at this temperature"
    )
    top_p: float = Field(1.0, gt=0, le=1, description="sampling: nucleus share")
    top_k: int | None = Field(None, gt=0, description="sampling: keep the k likeliest tokens")
    num_beams: int = Field(1, ge=1, description="beam search width (greedy decoding only)")
    repetition_penalty: float = Field(1.0, gt=0)
    stop: list[str] = Field(
        default_factory=list,
        description="stop at the first of these strings (cut from the output); EOS always stops",
    )
    seed: int | None = Field(None, description="sampling: fix the random seed")

    @model_validator(mode="after")
    def _check(self) -> GenerationConfig:
        if self.num_beams > 1 and self.temperature > 0:
            raise ValueError("num_beams: beam search is greedy; set temperature: 0 or num_beams: 1")
        if any(s == "" for s in self.stop):
            raise ValueError("stop: empty stop string")
        return self

    def generate_kwargs(self) -> dict:
        """Keyword arguments for `model.generate` (stop strings are handled by the caller)."""
        if self.temperature > 0:
            out = {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p}
            if self.top_k:
                out["top_k"] = self.top_k
        else:
            out = {"do_sample": False, "num_beams": self.num_beams}
        if self.repetition_penalty != 1.0:
            out["repetition_penalty"] = self.repetition_penalty
        return {"max_new_tokens": self.max_new_tokens, **out}
