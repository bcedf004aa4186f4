"""The Responses API in terms of chat completions, both ways: a request's input items as chat messages, its
tools and options as a chat completion request's; an assistant message as output items. Pure functions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import ValidationError

from llmapi.errors import InvalidRequestError, UnsupportedError
from llmapi.protocol.chat import ChatCompletionMessage, ChatCompletionRequest
from llmapi.protocol.common import MAX_TEXT_CHARS
from llmapi.protocol.responses import (
    Content,
    ContentPart,
    CreateResponseRequest,
    FunctionCall,
    FunctionCallItem,
    FunctionCallOutputItem,
    FunctionTool,
    FunctionToolChoice,
    IncompleteDetails,
    ItemStatus,
    MessageItem,
    OutputItem,
    OutputMessage,
    OutputRefusal,
    OutputText,
    ResponseStatus,
    TextFormat,
)
from llmapi.types import FinishReason

ChatMessage = dict[str, Any]
"""A chat message in its JSON form, as a chat completion request carries it."""

_TEXT_PARTS = frozenset({"input_text", "output_text", "text"})
# Where a chat completion request's field came from in the Responses request, for error messages.
_PARAMS = {
    "messages": "input",
    "max_completion_tokens": "max_output_tokens",
    "response_format": "text.format",
}


def new_id(prefix: str) -> str:
    """An id as OpenAI spells them: `resp_...`, `msg_...`, `fc_...`."""
    return f"{prefix}_{uuid.uuid4().hex}"


def input_messages(request: CreateResponseRequest) -> list[ChatMessage]:
    """The request's input as chat messages; function calls that follow each other are one assistant
    message's tool calls, as chat completions spell them."""
    if isinstance(request.input, str):
        return [{"role": "user", "content": request.input}]
    messages: list[ChatMessage] = []
    for i, item in enumerate(request.input):
        if isinstance(item, MessageItem):
            messages.append(_message(item, f"input.{i}"))
        elif isinstance(item, FunctionCallItem):
            call = {
                "id": item.call_id,
                "type": "function",
                "function": {"name": item.name, "arguments": item.arguments},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif isinstance(item, FunctionCallOutputItem):
            content = _content(item.output, f"input.{i}.output")
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": content})
        else:
            raise UnsupportedError(
                f"Input items of type '{item.type}' cannot be answered here: the model '{request.model}' is "
                "served through chat completions. Send message, function_call and function_call_output "
                "items.",
                param=f"input.{i}.type",
            )
    return messages


def _message(item: MessageItem, param: str) -> ChatMessage:
    if item.role == "assistant" and not isinstance(item.content, str):
        return {"role": "assistant", "content": "".join(_assistant_text(p, param) for p in item.content)}
    return {"role": item.role, "content": _content(item.content, f"{param}.content")}


def _assistant_text(part: ContentPart, param: str) -> str:
    if part.type in _TEXT_PARTS or part.type == "refusal":
        return part.text or part.refusal or ""
    raise UnsupportedError(
        f"An assistant message holds text, not '{part.type}' parts.", param=f"{param}.content"
    )


def _content(content: Content, param: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    return [_part(part, f"{param}.{j}") for j, part in enumerate(content)]


def _part(part: ContentPart, param: str) -> dict[str, Any]:
    """A content part as chat completions spell it; what the model cannot read it refuses later."""
    extra = part.model_extra or {}
    if part.type in _TEXT_PARTS:
        return {"type": "text", "text": part.text or ""}
    if part.type == "input_image" and isinstance(extra.get("image_url"), str):
        image = {"url": extra["image_url"], "detail": extra.get("detail") or "auto"}
        return {"type": "image_url", "image_url": image}
    if part.type == "input_file" and (extra.get("file_data") or extra.get("file_id")):
        fields = ("file_data", "file_id", "filename")
        return {"type": "file", "file": {name: extra[name] for name in fields if extra.get(name)}}
    if part.type == "input_audio":
        return {"type": "input_audio", "input_audio": extra.get("input_audio")}
    raise UnsupportedError(
        f"Content parts of type '{part.type}' cannot be sent to a chat model (images need an image_url, "
        "files their file_data or file_id).",
        param=f"{param}.type",
    )


def chat_document(request: CreateResponseRequest, conversation: Sequence[ChatMessage]) -> dict[str, Any]:
    """The chat completion request, in its JSON form, that answers `request` after `conversation` (the
    previous turns and this request's input): `instructions` lead, as a system message."""
    messages = [{"role": "system", "content": request.instructions}] if request.instructions else []
    document: dict[str, Any] = {"model": request.model, "messages": [*messages, *conversation]}
    options = {
        "max_completion_tokens": request.max_output_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "parallel_tool_calls": request.parallel_tool_calls,
        "user": request.user,
    }
    document.update((name, value) for name, value in options.items() if value is not None)
    if request.tools:
        document["tools"] = [_tool(tool, i) for i, tool in enumerate(request.tools)]
    if request.tool_choice is not None:
        document["tool_choice"] = _tool_choice(request.tool_choice)
    if request.text is not None and request.text.format.type != "text":
        document["response_format"] = _response_format(request.text.format)
    if request.stream:
        document.update(stream=True, stream_options={"include_usage": True})
    return document


def _tool(tool: Any, i: int) -> dict[str, Any]:
    if not isinstance(tool, FunctionTool):
        raise UnsupportedError(
            f"Tools of type '{tool.type}' are not served here; this server's models call function tools.",
            param=f"tools.{i}.type",
        )
    function = tool.model_dump(include={"name", "description", "parameters", "strict"}, exclude_none=True)
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> str | dict[str, Any]:
    if isinstance(choice, str):
        return choice
    if isinstance(choice, FunctionToolChoice):
        return {"type": "function", "function": {"name": choice.name}}
    raise UnsupportedError(
        f"tool_choice of type '{choice.type}' is not served here; give none, auto, required or a function.",
        param="tool_choice",
    )


def _response_format(text_format: TextFormat) -> dict[str, Any]:
    if text_format.type == "json_object":
        return {"type": "json_object"}
    fields = ("name", "schema", "description", "strict")
    extra = text_format.model_extra or {}
    return {"type": "json_schema", "json_schema": {name: extra[name] for name in fields if name in extra}}


def chat_request(document: dict[str, Any]) -> ChatCompletionRequest:
    """The chat completion request validated, its faults named as the Responses request's fields."""
    try:
        return ChatCompletionRequest.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        location = [str(part) for part in error["loc"]]
        field = _PARAMS.get(location[0], location[0]) if location else None
        message = str(error["msg"]).removeprefix("Value error, ")
        raise InvalidRequestError(f"Invalid value for '{field}': {message}", param=field) from None


def admission_request(request: CreateResponseRequest) -> ChatCompletionRequest:
    """What a request passed through as sent is admitted as: its whole input counted as text (an
    over-estimate, settled to the upstream's counts), no sampling fields (so it is never cached: a response
    has an id of its own)."""
    text = orjson.dumps([request.instructions, request.model_dump(mode="json", include={"input"})]).decode()
    pieces = range(0, len(text), MAX_TEXT_CHARS)
    document = {
        "model": request.model,
        "messages": [{"role": "user", "content": text[at : at + MAX_TEXT_CHARS]} for at in pieces],
        "max_completion_tokens": request.max_output_tokens,
        "stream": request.stream,
    }
    return ChatCompletionRequest.model_validate(document)


def status_of(finish_reason: FinishReason | None) -> tuple[ResponseStatus, IncompleteDetails | None]:
    if finish_reason == "length":
        return "incomplete", IncompleteDetails(reason="max_output_tokens")
    if finish_reason == "content_filter":
        return "incomplete", IncompleteDetails(reason="content_filter")
    return "completed", None


def output_items(message: ChatCompletionMessage, finish_reason: FinishReason | None) -> list[OutputItem]:
    """An assistant message as output items: its text (or refusal) as a message, each tool call as a
    function call."""
    status: ItemStatus = "incomplete" if status_of(finish_reason)[0] == "incomplete" else "completed"
    items: list[OutputItem] = []
    if message.refusal:
        items.append(
            OutputMessage(id=new_id("msg"), status=status, content=[OutputRefusal(refusal=message.refusal)])
        )
    elif message.content or not message.tool_calls:
        items.append(
            OutputMessage(id=new_id("msg"), status=status, content=[OutputText(text=message.content or "")])
        )
    items.extend(
        FunctionCall(
            id=new_id("fc"),
            status="completed",
            arguments=call.function.arguments,
            call_id=call.id,
            name=call.function.name,
        )
        for call in message.tool_calls or []
    )
    return items


def assistant_message(output: Sequence[OutputItem]) -> ChatMessage:
    """The output as the chat message a continuation of the conversation reads."""
    texts = [
        part.text if isinstance(part, OutputText) else part.refusal
        for item in output
        if isinstance(item, OutputMessage)
        for part in item.content
    ]
    calls = [
        {"id": item.call_id, "type": "function", "function": {"name": item.name, "arguments": item.arguments}}
        for item in output
        if isinstance(item, FunctionCall)
    ]
    message: ChatMessage = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message
