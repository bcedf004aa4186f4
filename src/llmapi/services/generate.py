"""POST /v1/generate/text: the task endpoint for plain text generation."""

from __future__ import annotations

from collections.abc import AsyncIterator

from llmapi.backends.base import TextPrompt
from llmapi.backends.registry import ModelRegistry
from llmapi.protocol.common import Usage
from llmapi.protocol.generate import GenerateTextChunk, GenerateTextRequest, GenerateTextResponse
from llmapi.services.generation import Job, SequenceResult, Transcript, new_id, now, run_all, stream_all
from llmapi.services.response_cache import NO_CACHE, CacheLookup
from llmapi.services.usage import UsageNote


def _job(request: GenerateTextRequest, default_max_tokens: int) -> Job:
    params = request.to_sampling_params(max_tokens=request.max_tokens or default_max_tokens)
    return Job(TextPrompt(text=request.prompt), params)


def _response(model: str, result: SequenceResult) -> GenerateTextResponse:
    return GenerateTextResponse(
        id=new_id("gen"),
        created=now(),
        model=model,
        output=result.text,
        finish_reason=result.finish_reason,
        usage=Usage.of(result.prompt_tokens, result.completion_tokens),
    )


async def generate_text(
    *,
    request: GenerateTextRequest,
    registry: ModelRegistry,
    default_max_tokens: int,
    note: UsageNote,
    cache: CacheLookup = NO_CACHE,
) -> GenerateTextResponse:
    backend = registry.text(request.model)
    model = backend.card.id
    if cached := await cache.get(GenerateTextResponse):
        note.count_cached(model=model, prompt_tokens=cached.usage.prompt_tokens)
        return cached.model_copy(update={"id": new_id("gen"), "created": now()})
    [result] = await run_all(backend, [_job(request, default_max_tokens)])
    note.count(model=model, prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens)
    response = _response(model, result)
    await cache.put(response)
    return response


async def stream_text(
    *,
    request: GenerateTextRequest,
    registry: ModelRegistry,
    default_max_tokens: int,
    note: UsageNote,
    cache: CacheLookup = NO_CACHE,
) -> AsyncIterator[GenerateTextChunk]:
    backend = registry.text(request.model)
    chunk_id, created, model = new_id("gen"), now(), backend.card.id
    if cached := await cache.get(GenerateTextResponse):
        note.count_cached(model=model, prompt_tokens=cached.usage.prompt_tokens)
        yield GenerateTextChunk(
            id=chunk_id,
            created=created,
            model=model,
            output=cached.output,
            finish_reason=cached.finish_reason,
            usage=cached.usage,
        )
        return
    transcript = Transcript(1)
    async for _, piece in stream_all(backend, [_job(request, default_max_tokens)]):
        transcript.add(0, piece)
        usage = Usage.of(piece.prompt_tokens, piece.completion_tokens) if piece.finish_reason else None
        if usage is not None:
            note.count(
                model=model, prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens
            )
        yield GenerateTextChunk(
            id=chunk_id,
            created=created,
            model=model,
            output=piece.text,
            finish_reason=piece.finish_reason,
            usage=usage,
        )
    if results := transcript.results():
        await cache.put(_response(model, results[0]))
