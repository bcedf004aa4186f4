"""The Responses API (POST /v1/responses), answered through chat completions: a request and the conversation
it continues become one chat completion request; its answer becomes the response's output items (or, as it
streams, the Responses API's events), kept for the caller when the request says `store`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from llmapi.backends.base import PassThroughBackend
from llmapi.protocol.chat import ChatCompletionChunk, ChatCompletionRequest
from llmapi.protocol.common import Usage
from llmapi.protocol.response_events import ResponseEvent
from llmapi.protocol.responses import (
    CreateResponseRequest,
    ModelResponse,
    OutputItem,
    ResponseUsage,
    TextConfig,
)
from llmapi.services.chat import create_chat_completion, stream_chat_completion
from llmapi.services.forwarding import Forwarding
from llmapi.services.inference import Inference
from llmapi.services.response_events import ResponseEvents
from llmapi.services.response_store import ResponseStore
from llmapi.services.response_translation import (
    ChatMessage,
    admission_request,
    assistant_message,
    chat_document,
    chat_request,
    input_messages,
    new_id,
    output_items,
    status_of,
)
from llmapi.services.text_jobs import Generation
from llmapi.types import FinishReason


def forwards_responses(upstream: PassThroughBackend | None) -> bool:
    """Whether a Responses request for a model goes upstream as the client sent it (to the upstream's
    `/responses`), instead of being answered through chat completions: a passed-through model whose
    upstream has the Responses API (the remote `openai` backend with `responses_api: true`). The one place
    that decides it."""
    return upstream is not None and upstream.responses_api


async def forwarding(inference: Inference, request: CreateResponseRequest) -> Forwarding | None:
    """The handle that passes `request` through to its model's upstream, admitted; None for a model that
    answers through chat completions. Nothing of a passed-through request is stored here (the upstream
    keeps it, `previous_response_id` is the upstream's)."""
    backend = inference.registry.text(request.model)
    if not forwards_responses(inference.registry.upstream(backend.card.id)):
        return None
    handle = await inference.generation("chat", admission_request(request))
    if not isinstance(handle, Forwarding):
        raise TypeError(f"the model '{request.model}' is passed through, but was given a local generation")
    return handle


@dataclass(frozen=True, slots=True)
class Turn:
    """One request, translated: the chat completion request that answers it, in its JSON form (what a
    passed-through model's upstream gets) and validated, and the conversation up to this request's input."""

    request: CreateResponseRequest
    conversation: list[ChatMessage]
    document: dict[str, Any]
    chat: ChatCompletionRequest

    @classmethod
    def of(cls, request: CreateResponseRequest, history: list[ChatMessage]) -> Turn:
        """`history`: the stored conversation of the response this one continues (without its instructions,
        which are not carried over)."""
        conversation = [*history, *input_messages(request)]
        document = chat_document(request, conversation)
        return cls(request, conversation, document, chat_request(document))

    def response(self, model: str) -> ModelResponse:
        """The response in progress: the request's settings echoed, no output yet."""
        request = self.request
        return ModelResponse(
            id=new_id("resp"),
            created_at=int(time.time()),
            status="in_progress",
            instructions=request.instructions,
            max_output_tokens=request.max_output_tokens,
            model=model,
            output=[],
            parallel_tool_calls=request.parallel_tool_calls is not False,
            previous_response_id=request.previous_response_id,
            store=request.store,
            temperature=1.0 if request.temperature is None else request.temperature,
            text=request.text or TextConfig(),
            tool_choice="auto" if request.tool_choice is None else request.tool_choice,
            tools=request.tools or [],
            top_p=1.0 if request.top_p is None else request.top_p,
            user=request.user,
            metadata=request.metadata or {},
        )

    def continued_by(self, output: list[OutputItem]) -> list[ChatMessage]:
        """What a response continuing this one starts from."""
        return [*self.conversation, assistant_message(output)]


async def create_response(
    *, turn: Turn, generation: Generation | Forwarding, store: ResponseStore
) -> ModelResponse:
    completion = await create_chat_completion(
        request=turn.chat, generation=generation, document=turn.document
    )
    choice = completion.choices[0]
    status, incomplete = status_of(choice.finish_reason)
    usage = completion.usage
    response = turn.response(generation.meter.model).model_copy(
        update={
            "status": status,
            "incomplete_details": incomplete,
            "output": output_items(choice.message, choice.finish_reason),
            "usage": None if usage is None else _usage(usage),
            "completed_at": int(time.time()) if status == "completed" else None,
        }
    )
    await _keep(response, turn, store)
    return response


async def stream_response(
    *, turn: Turn, generation: Generation | Forwarding, store: ResponseStore
) -> AsyncIterator[ResponseEvent]:
    """The events of the answer as it is generated. The first waits for the answer's first chunk, so that
    a request the model refuses still gets its error status rather than a stream."""
    events = ResponseEvents(turn.response(generation.meter.model))
    finish_reason: FinishReason | None = None
    usage: ResponseUsage | None = None
    chunks = stream_chat_completion(request=turn.chat, generation=generation, document=turn.document)
    async with aclosing(chunks):
        chunk = await anext(chunks, None)
        for event in events.start():
            yield event
        while chunk is not None:
            for event in _translated(chunk, events):
                yield event
            if chunk.choices and chunk.choices[0].finish_reason:
                finish_reason = chunk.choices[0].finish_reason
            if chunk.usage is not None:
                usage = _usage(chunk.usage)
            chunk = await anext(chunks, None)
    closing, response = events.finish(finish_reason, usage)
    await _keep(response, turn, store)
    for event in closing:
        yield event


def _translated(chunk: ChatCompletionChunk, events: ResponseEvents) -> list[ResponseEvent]:
    """The events of one chunk of the first choice (a Responses request asks for one)."""
    if not chunk.choices or chunk.choices[0].index != 0:
        return []
    delta = chunk.choices[0].delta
    out = events.text(delta.content) if delta.content else []
    for call in delta.tool_calls or []:
        function = call.function
        name, arguments = (function.name, function.arguments) if function is not None else (None, None)
        out += events.tool_call(call.index, call.id, name, arguments)
    return out


async def _keep(response: ModelResponse, turn: Turn, store: ResponseStore) -> None:
    if turn.request.store:
        await store.save(response, turn.continued_by(response.output))


def _usage(usage: Usage) -> ResponseUsage:
    return ResponseUsage.of(usage.prompt_tokens, usage.completion_tokens)
