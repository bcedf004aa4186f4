"""POST /v1/chat/completions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

from llmapi.protocol.common import (
    MAX_CHOICES,
    LogitBias,
    MaxTokens,
    NameText,
    SamplingFields,
    StreamOptions,
    Text,
    Usage,
    estimated_tokens,
)
from llmapi.types import Feature, FinishReason, MessageRole

MAX_MESSAGES = 2048
MAX_CONTENT_PARTS = 256
MAX_TOOLS = 512
MAX_TOP_LOGPROBS = 20


class ContentPart(BaseModel):
    """A part of a message's content: text, or what a multimodal model reads (`image_url`, `input_audio`,
    `file`), kept as sent."""

    model_config = ConfigDict(extra="allow")

    type: Annotated[str, Field(min_length=1, max_length=64)]
    text: Text | None = None


class ToolCallFunction(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    arguments: str


class ToolCall(BaseModel):
    """A function call the model made, in an assistant message (and back in the next request)."""

    model_config = ConfigDict(extra="allow")

    id: str
    type: Literal["function"] = "function"
    function: ToolCallFunction


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: MessageRole
    content: Text | Annotated[list[ContentPart], Field(max_length=MAX_CONTENT_PARTS)] | None = None
    name: NameText | None = None
    tool_calls: Annotated[list[ToolCall], Field(max_length=MAX_TOOLS)] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content)

    def reads_beyond_text(self) -> bool:
        return not isinstance(self.content, str | None) and any(p.type != "text" for p in self.content)


class ChatCompletionRequest(SamplingFields):
    messages: Annotated[list[ChatMessageIn], Field(min_length=1, max_length=MAX_MESSAGES)]
    model: str = Field(min_length=1)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=MAX_TOP_LOGPROBS)
    max_completion_tokens: MaxTokens | None = None
    max_tokens: MaxTokens | None = Field(
        default=None, description="Deprecated alias of max_completion_tokens."
    )
    n: int = Field(default=1, ge=1, le=MAX_CHOICES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: Annotated[list[dict[str, Any]], Field(max_length=MAX_TOOLS)] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    logit_bias: LogitBias | None = None
    user: str | None = None

    def features(self) -> set[Feature]:
        """What the request asks of the model beyond reading and writing text."""
        used: set[Feature] = set()
        if self.tools or any(m.tool_calls or m.role == "tool" for m in self.messages):
            used.add("tools")
        if self.logprobs or self.top_logprobs:
            used.add("logprobs")
        if self.response_format and self.response_format.get("type", "text") != "text":
            used.add("structured output")
        if self.logit_bias:
            used.add("logit_bias")
        if any(m.reads_beyond_text() for m in self.messages):
            used.add("non-text content")
        return used

    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    def sequence_count(self) -> int:
        return self.n

    def token_estimate(self, max_tokens: int) -> int:
        return self.prompt_token_estimate() + max_tokens * self.n

    def prompt_token_estimate(self) -> int:
        """Each of the n choices prefills the messages."""
        return sum(estimated_tokens(m.text()) for m in self.messages) * self.n


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob] = Field(default_factory=list)


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprob] | None = None
    refusal: list[TokenLogprob] | None = None


class ChatCompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None

    @field_validator("tool_calls")
    @classmethod
    def _no_calls_is_none(cls, value: list[ToolCall] | None) -> list[ToolCall] | None:
        return value or None

    @model_serializer(mode="wrap")
    def _omit_absent_tool_calls(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("tool_calls") is None:
            data.pop("tool_calls", None)
        return data


class ChatChoice(BaseModel):
    index: int
    message: ChatCompletionMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: FinishReason


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class ToolCallFunctionDelta(BaseModel):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(BaseModel):
    """A piece of a tool call in a stream: the first piece of call `index` has its id, type and name."""

    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: ToolCallFunctionDelta | None = None


class ChatDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None

    @model_serializer(mode="wrap")
    def _omit_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if value is not None}


class ChatChunkChoice(BaseModel):
    index: int
    delta: ChatDelta
    logprobs: ChoiceLogprobs | None = None
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None
