"""POST /v1/completions (the legacy text completions)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, field_validator, model_serializer

from llmapi.protocol.common import (
    MAX_CHOICES,
    LogitBias,
    MaxTokens,
    SamplingFields,
    StreamOptions,
    Text,
    TokenIds,
    Usage,
    estimated_tokens,
)
from llmapi.types import Feature, FinishReason

MAX_PROMPTS = 16


class CompletionRequest(SamplingFields):
    model: str = Field(min_length=1)
    prompt: (
        Text
        | Annotated[list[Text], Field(min_length=1, max_length=MAX_PROMPTS)]
        | TokenIds
        | Annotated[list[TokenIds], Field(min_length=1, max_length=MAX_PROMPTS)]
    ) = Field(description="A prompt or a list of prompts: strings, or token ids of the model's tokenizer.")
    echo: bool = False
    logprobs: int | None = Field(default=None, ge=0, le=5)
    logit_bias: LogitBias | None = None
    max_tokens: MaxTokens = 16
    n: int = Field(default=1, ge=1, le=MAX_CHOICES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    suffix: str | None = None
    user: str | None = None
    response_format: dict[str, Any] | None = Field(
        default=None,
        description="Extension (as vLLM): the answer's format, as chat completions take it.",
    )

    @field_validator("prompt", mode="before")
    @classmethod
    def _null_prompt_is_empty(cls, value: Any) -> Any:
        """OpenAI's null prompt is the start of a document: here, the model's start token."""
        return "" if value is None else value

    def features(self) -> set[Feature]:
        """What the request asks of the model beyond reading and writing text."""
        used: set[Feature] = set()
        if self.logprobs:
            used.add("logprobs")
        if self.suffix:
            used.add("suffix")
        if self.logit_bias:
            used.add("logit_bias")
        if self.response_format and self.response_format.get("type", "text") != "text":
            used.add("structured output")
        return used

    def requested_max_tokens(self) -> int | None:
        return self.max_tokens

    def sequence_count(self) -> int:
        return self.n * len(self.prompts())

    def token_estimate(self, max_tokens: int) -> int:
        return self.prompt_token_estimate() + max_tokens * self.sequence_count()

    def prompt_token_estimate(self) -> int:
        """Each of the n choices of a prompt prefills it."""
        return sum(estimated_tokens(p) if isinstance(p, str) else len(p) for p in self.prompts()) * self.n

    def prompts(self) -> list[str | tuple[int, ...]]:
        """The prompts as strings or token-id tuples, in request order."""
        prompt = self.prompt
        if isinstance(prompt, str):
            return [prompt]
        if isinstance(prompt[0], int):
            return [tuple(item for item in prompt if isinstance(item, int))]
        return [
            item if isinstance(item, str) else tuple(item) for item in prompt if not isinstance(item, int)
        ]


class CompletionLogprobs(BaseModel):
    tokens: list[str] | None = None
    token_logprobs: list[float | None] | None = None
    top_logprobs: list[dict[str, float] | None] | None = None
    text_offset: list[int] | None = None


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: FinishReason | None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None

    @model_serializer(mode="wrap")
    def _omit_absent_usage(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("usage") is None:
            data.pop("usage", None)
        return data
