"""Request bodies, mirroring OpenAI's chat/completions API, plus /v1/classify and /v1/entities.

Unknown fields are ignored (clients send more than any one server reads); known fields are
type-checked, and a wrong type is a 422 naming the field.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_STOP = 4  # as OpenAI


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


Metadata = dict[str, str | int | float | bool | None]
METADATA = Field(
    None,
    description='tunelab extension: kept with the logged prediction (e.g. {"group": "eu"});'
    " `tunelab monitor` reports per value of each key",
)


class TextPart(_Body):
    type: Literal["text"]
    text: str


class Message(_Body):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content)
        return self.content or ""


class StreamOptions(_Body):
    include_usage: bool = False


class _Sampling(_Body):
    model: str = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int | None = Field(None, ge=1, description="tunelab extension: keep the k likeliest")
    n: int = Field(1, ge=1, le=8)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float = Field(0.0, ge=-2, le=2)
    frequency_penalty: float = Field(0.0, ge=-2, le=2)
    user: str | None = None
    metadata: Metadata | None = METADATA

    @field_validator("stop")
    @classmethod
    def _stops(cls, v):
        stops = [v] if isinstance(v, str) else list(v or [])
        if len(stops) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop strings")
        if any(s == "" for s in stops):
            raise ValueError("empty stop string")
        return stops


class ChatRequest(_Sampling):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = None


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    max_tokens: int | None = Field(16, ge=1)  # OpenAI's default for completions
    echo: bool = False
    logprobs: int | None = None

    @field_validator("prompt")
    @classmethod
    def _prompts(cls, v):
        if isinstance(v, list) and not v:
            raise ValueError("no prompt")
        return v


class EntitiesRequest(_Body):
    model: str = Field(min_length=1)
    input: str | list[str]
    metadata: Metadata | None = METADATA

    @field_validator("input")
    @classmethod
    def _inputs(cls, v):
        if isinstance(v, list) and not v:
            raise ValueError("no input")
        return v


class AnswerRequest(_Body):
    """/v1/answer: a question and its context, or lists of both (one context per question)."""

    model: str | None = Field(None, min_length=1, description="None: the one model served")
    question: str | list[str]
    context: str | list[str]
    metadata: Metadata | None = METADATA

    @field_validator("question", "context")
    @classmethod
    def _texts(cls, v):
        for text in [v] if isinstance(v, str) else v or [None]:
            if text is None or not text.strip():
                raise ValueError("no input" if text is None else "empty text")
        return v


class ClassifyRequest(EntitiesRequest):
    pair: str | list[str] | None = Field(None, description="second text of sentence pairs")


class EntitySpan(_Body):
    start: int = Field(ge=0)
    end: int = Field(ge=1)
    label: str = Field(min_length=1)


class FeedbackRequest(_Body):
    """/v1/feedback: the truth for one logged input, named by its id (the X-Request-Id of a
    single-input request, or a batch reply's `data[i].id` / `choices[i].id`)."""

    request_id: str = Field(min_length=1, max_length=64)
    label: str | None = Field(None, min_length=1, description="the right class (classifiers)")
    entities: list[EntitySpan] | None = Field(None, description="the right spans (taggers)")
    ideal_answer: str | None = Field(None, description="the answer it should have given")
    rating: float | None = Field(None, description="a score of the answer (any scale)")
    metadata: Metadata | None = Field(None, description="kept with the feedback")


class FeedbackReply(BaseModel):
    object: Literal["feedback"] = "feedback"
    id: str
    request_id: str
    version: int = Field(description="1 for the first answer about this input, then 2, ...")
    model: str | None
