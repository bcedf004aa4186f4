"""POST /v1/analyze/sentiment."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from llmapi.protocol.common import NonEmptyText, PromptUsage, RequestModel, estimated_tokens

MAX_TEXTS = 1024


class SentimentRequest(RequestModel):
    text: NonEmptyText | None = Field(default=None, description="One text to analyse.")
    texts: Annotated[list[NonEmptyText], Field(min_length=1, max_length=MAX_TEXTS)] | None = Field(
        default=None, description="Several texts to analyse; give either text or texts."
    )
    model: str | None = Field(default=None, description="Defaults to the first sentiment model.")

    @model_validator(mode="after")
    def _one_of_text_or_texts(self) -> SentimentRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' (a string) or 'texts' (a list of strings)")
        return self

    def all_texts(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])

    def token_estimate(self) -> int:
        return sum(estimated_tokens(text) for text in self.all_texts())


class SentimentResult(BaseModel):
    index: int
    label: str
    score: float
    scores: dict[str, float]


class SentimentResponse(BaseModel):
    object: Literal["sentiment.analysis"] = "sentiment.analysis"
    model: str
    results: list[SentimentResult]
    usage: PromptUsage
