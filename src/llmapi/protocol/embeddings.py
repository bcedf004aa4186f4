"""POST /v1/embeddings."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from llmapi.protocol.common import NonEmptyText, PromptUsage, RequestModel, TokenIds, estimated_tokens

MAX_INPUTS = 2048
InputText = NonEmptyText


class EmbeddingRequest(RequestModel):
    input: (
        InputText
        | Annotated[list[InputText], Field(min_length=1, max_length=MAX_INPUTS)]
        | TokenIds
        | Annotated[list[TokenIds], Field(min_length=1, max_length=MAX_INPUTS)]
    ) = Field(description="Text or token ids to embed: one item or a list (at most 2048).")
    model: str = Field(min_length=1)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None

    def has_token_ids(self) -> bool:
        return not isinstance(self.input, str) and not all(isinstance(item, str) for item in self.input)

    def token_estimate(self) -> int:
        items = [self.input] if isinstance(self.input, str) or isinstance(self.input[0], int) else self.input
        return sum(estimated_tokens(i) if isinstance(i, str) else len(i) for i in items)


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    embedding: list[float] | str
    index: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: PromptUsage
