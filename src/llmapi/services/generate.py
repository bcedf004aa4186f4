"""POST /v1/generate/text: the task endpoint for plain text generation."""

from __future__ import annotations

from collections.abc import AsyncIterator

from llmapi.backends.base import TextPrompt
from llmapi.protocol.common import Usage
from llmapi.protocol.generate import GenerateTextChunk, GenerateTextRequest, GenerateTextResponse
from llmapi.services.text_jobs import Generation, Job, new_id, now, sampling_params


def _job(request: GenerateTextRequest, max_tokens: int) -> Job:
    return Job(TextPrompt(text=request.prompt), sampling_params(request, max_tokens=max_tokens))


async def generate_text(*, request: GenerateTextRequest, generation: Generation) -> GenerateTextResponse:
    [result] = (await generation.run([_job(request, generation.max_tokens)])).results
    return GenerateTextResponse(
        id=new_id("gen"),
        created=now(),
        model=generation.model,
        output=result.text,
        finish_reason=result.finish_reason,
        usage=Usage.of(result.prompt_tokens, result.completion_tokens),
    )


async def stream_text(
    *, request: GenerateTextRequest, generation: Generation
) -> AsyncIterator[GenerateTextChunk]:
    chunk_id, created = new_id("gen"), now()
    async for _, piece in generation.stream([_job(request, generation.max_tokens)]):
        usage = Usage.of(piece.prompt_tokens, piece.completion_tokens) if piece.finish_reason else None
        yield GenerateTextChunk(
            id=chunk_id,
            created=created,
            model=generation.model,
            output=piece.text,
            finish_reason=piece.finish_reason,
            usage=usage,
        )
