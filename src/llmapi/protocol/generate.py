"""POST /v1/generate/text: a plain prompt in, text out."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from llmapi.protocol.common import MaxTokens, SamplingFields, Text, Usage, estimated_tokens
from llmapi.types import FinishReason


class GenerateTextRequest(SamplingFields):
    prompt: Text = Field(description="The text to continue.")
    model: str | None = Field(default=None, description="Defaults to the first text-generation model.")
    max_tokens: MaxTokens | None = None
    stream: bool = False

    def requested_max_tokens(self) -> int | None:
        return self.max_tokens

    def sequence_count(self) -> int:
        return 1

    def token_estimate(self, max_tokens: int) -> int:
        return self.prompt_token_estimate() + max_tokens

    def prompt_token_estimate(self) -> int:
        return estimated_tokens(self.prompt)


class GenerateTextResponse(BaseModel):
    id: str
    object: Literal["text.generation"] = "text.generation"
    created: int
    model: str
    output: str
    finish_reason: FinishReason
    usage: Usage


class GenerateTextChunk(BaseModel):
    id: str
    object: Literal["text.generation.chunk"] = "text.generation.chunk"
    created: int
    model: str
    output: str
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
