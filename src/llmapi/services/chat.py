"""Chat completions: messages in, an assistant message (or a stream of deltas) out."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

from llmapi.backends.base import ChatMessage, ChatPrompt
from llmapi.protocol.chat import (
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    ChatCompletionRequest,
    ChatDelta,
)
from llmapi.protocol.common import Usage
from llmapi.services.forwarding import Forwarding
from llmapi.services.text_jobs import GeneratedTexts, Generation, Job, Transcript, choices, new_id, now

_PATH = "chat/completions"


def _document(request: ChatCompletionRequest, document: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return document if document is not None else request.model_dump(mode="json", exclude_unset=True)


def _jobs(request: ChatCompletionRequest, max_tokens: int) -> list[Job]:
    prompt = ChatPrompt(tuple(ChatMessage(role=m.role, content=m.text()) for m in request.messages))
    return choices(prompt, request, n=request.n, max_tokens=max_tokens)


def _completion(model: str, texts: GeneratedTexts) -> ChatCompletion:
    return ChatCompletion(
        id=new_id("chatcmpl"),
        created=now(),
        model=model,
        choices=[
            ChatChoice(index=i, message=ChatCompletionMessage(content=r.text), finish_reason=r.finish_reason)
            for i, r in enumerate(texts.results)
        ],
        usage=Usage.of(texts.prompt_tokens, texts.completion_tokens),
    )


async def create_chat_completion(
    *,
    request: ChatCompletionRequest,
    generation: Generation | Forwarding,
    document: Mapping[str, Any] | None = None,
) -> ChatCompletion:
    """`document` is the request in its JSON form, as a passed-through request goes upstream (by default,
    the fields `request` was given)."""
    if isinstance(generation, Forwarding):
        body = await generation.answer(_PATH, _document(request, document))
        return ChatCompletion.model_validate_json(body)
    return _completion(generation.model, await generation.run(_jobs(request, generation.max_tokens)))


async def stream_chat_completion(
    *,
    request: ChatCompletionRequest,
    generation: Generation | Forwarding,
    document: Mapping[str, Any] | None = None,
) -> AsyncGenerator[ChatCompletionChunk, None]:
    """Chunks as OpenAI sends them: a role delta per choice, content deltas, exactly one chunk with
    finish_reason per choice, then (with stream_options.include_usage) a usage chunk with no choices."""
    if isinstance(generation, Forwarding):
        async with aclosing(generation.stream(_PATH, _document(request, document))) as batches:
            async for batch in batches:
                for event in batch:
                    yield ChatCompletionChunk.model_validate_json(event)
        return
    include_usage = bool(request.stream_options and request.stream_options.include_usage)
    chunk_id, created = new_id("chatcmpl"), now()

    def chunk(choices: list[ChatChunkChoice], usage: Usage | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=chunk_id, created=created, model=generation.model, choices=choices, usage=usage
        )

    jobs = _jobs(request, generation.max_tokens)
    transcript = Transcript(jobs)
    started = False
    async for index, piece in generation.stream(jobs):
        if not started:
            started = True
            for i in range(request.n):
                yield chunk([ChatChunkChoice(index=i, delta=ChatDelta(role="assistant", content=""))])
        transcript.add(index, piece)
        if piece.text or piece.finish_reason:
            delta = ChatDelta(content=piece.text) if piece.text else ChatDelta()
            yield chunk([ChatChunkChoice(index=index, delta=delta, finish_reason=piece.finish_reason)])
    if include_usage:
        yield chunk([], Usage.of(*transcript.tokens()))
