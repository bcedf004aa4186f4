"""The events of a streamed response (POST /v1/responses with `stream: true`), as OpenAI sends them: each
with its `type` (also the server-sent event's name) and a `sequence_number` counting from 0."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from llmapi.protocol.responses import ModelResponse, OutputItem, OutputText


class ResponseEvent(BaseModel):
    type: str
    sequence_number: int


class LifecycleEvent(ResponseEvent):
    """The response as it stands: `created` and `in_progress` first, one of the others last."""

    type: Literal[
        "response.created",
        "response.in_progress",
        "response.completed",
        "response.incomplete",
        "response.failed",
    ]
    response: ModelResponse


class OutputItemEvent(ResponseEvent):
    type: Literal["response.output_item.added", "response.output_item.done"]
    output_index: int
    item: OutputItem


class ContentPartEvent(ResponseEvent):
    type: Literal["response.content_part.added", "response.content_part.done"]
    item_id: str
    output_index: int
    content_index: int
    part: OutputText


class TextDeltaEvent(ResponseEvent):
    type: Literal["response.output_text.delta"] = "response.output_text.delta"
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[dict[str, object]] = Field(default_factory=list)


class TextDoneEvent(ResponseEvent):
    type: Literal["response.output_text.done"] = "response.output_text.done"
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[dict[str, object]] = Field(default_factory=list)


class ArgumentsDeltaEvent(ResponseEvent):
    type: Literal["response.function_call_arguments.delta"] = "response.function_call_arguments.delta"
    item_id: str
    output_index: int
    delta: str


class ArgumentsDoneEvent(ResponseEvent):
    type: Literal["response.function_call_arguments.done"] = "response.function_call_arguments.done"
    item_id: str
    output_index: int
    name: str
    arguments: str


class ErrorEvent(ResponseEvent):
    """A failure after the stream started; the stream ends with it."""

    type: Literal["error"] = "error"
    code: str | None
    message: str
    param: str | None
