"""Chat completions: messages in, an assistant message (or a stream of deltas) out."""

from __future__ import annotations

from collections.abc import AsyncIterator

from llmapi.backends.base import ChatMessage, ChatPrompt
from llmapi.backends.registry import ModelRegistry
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
from llmapi.services.generation import Job, SequenceResult, Transcript, new_id, now, run_all, stream_all
from llmapi.services.response_cache import NO_CACHE, CacheLookup
from llmapi.services.usage import UsageNote


def _jobs(request: ChatCompletionRequest, default_max_tokens: int) -> list[Job]:
    prompt = ChatPrompt(tuple(ChatMessage(role=m.role, content=m.text()) for m in request.messages))
    max_tokens = request.requested_max_tokens() or default_max_tokens
    return [
        Job(prompt, request.to_sampling_params(max_tokens=max_tokens, seed_offset=i))
        for i in range(request.n)
    ]


def _completion(request: ChatCompletionRequest, results: list[SequenceResult]) -> ChatCompletion:
    return ChatCompletion(
        id=new_id("chatcmpl"),
        created=now(),
        model=request.model,
        choices=[
            ChatChoice(index=i, message=ChatCompletionMessage(content=r.text), finish_reason=r.finish_reason)
            for i, r in enumerate(results)
        ],
        usage=Usage.of(results[0].prompt_tokens, sum(r.completion_tokens for r in results)),
    )


async def create_chat_completion(
    *,
    request: ChatCompletionRequest,
    registry: ModelRegistry,
    default_max_tokens: int,
    note: UsageNote,
    cache: CacheLookup = NO_CACHE,
) -> ChatCompletion:
    backend = registry.text(request.model)
    if cached := await cache.get(ChatCompletion):
        note.count_cached(model=request.model, prompt_tokens=cached.usage.prompt_tokens)
        return cached.model_copy(update={"id": new_id("chatcmpl"), "created": now()})
    completion = _completion(request, await run_all(backend, _jobs(request, default_max_tokens)))
    usage = completion.usage
    note.count(
        model=request.model, prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens
    )
    await cache.put(completion)
    return completion


async def stream_chat_completion(
    *,
    request: ChatCompletionRequest,
    registry: ModelRegistry,
    default_max_tokens: int,
    note: UsageNote,
    cache: CacheLookup = NO_CACHE,
) -> AsyncIterator[ChatCompletionChunk]:
    """Chunks as OpenAI sends them: a role delta per choice, content deltas, exactly one chunk with
    finish_reason per choice, then (with stream_options.include_usage) a usage chunk with no choices."""
    backend = registry.text(request.model)
    include_usage = bool(request.stream_options and request.stream_options.include_usage)
    chunk_id, created = new_id("chatcmpl"), now()

    def chunk(choices: list[ChatChunkChoice], usage: Usage | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=chunk_id, created=created, model=request.model, choices=choices, usage=usage
        )

    def opening() -> list[ChatCompletionChunk]:
        return [
            chunk([ChatChunkChoice(index=i, delta=ChatDelta(role="assistant", content=""))])
            for i in range(request.n)
        ]

    if cached := await cache.get(ChatCompletion):
        note.count_cached(model=request.model, prompt_tokens=cached.usage.prompt_tokens)
        for opener in opening():
            yield opener
        for choice in cached.choices:
            delta = ChatDelta(content=choice.message.content)
            yield chunk(
                [ChatChunkChoice(index=choice.index, delta=delta, finish_reason=choice.finish_reason)]
            )
        if include_usage:
            yield chunk([], cached.usage)
        return

    jobs = _jobs(request, default_max_tokens)
    transcript = Transcript(len(jobs))
    prompt_tokens, completion_tokens, started = 0, 0, False
    async for index, piece in stream_all(backend, jobs):
        if not started:
            started = True
            for opener in opening():
                yield opener
        transcript.add(index, piece)
        if piece.text or piece.finish_reason:
            delta = ChatDelta(content=piece.text) if piece.text else ChatDelta()
            yield chunk([ChatChunkChoice(index=index, delta=delta, finish_reason=piece.finish_reason)])
        if piece.finish_reason:
            prompt_tokens = piece.prompt_tokens
            completion_tokens += piece.completion_tokens
            note.count(model=request.model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    if include_usage:
        yield chunk([], Usage.of(prompt_tokens, completion_tokens))
    if results := transcript.results():
        await cache.put(_completion(request, results))
