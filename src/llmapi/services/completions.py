"""Text completions: prompts in, continuations (or a stream of them) out."""

from __future__ import annotations

from collections.abc import AsyncIterator

from llmapi.backends.base import TextPrompt
from llmapi.backends.registry import ModelRegistry
from llmapi.protocol.common import Usage
from llmapi.protocol.completions import Completion, CompletionChoice, CompletionRequest
from llmapi.services.generation import Job, SequenceResult, Transcript, new_id, now, run_all, stream_all
from llmapi.services.response_cache import NO_CACHE, CacheLookup
from llmapi.services.usage import UsageNote


def _jobs(request: CompletionRequest, default_max_tokens: int) -> list[Job]:
    """n jobs per prompt; choice index = prompt index * n + choice, as OpenAI numbers them."""
    max_tokens = request.max_tokens or default_max_tokens
    jobs = []
    for prompt in request.prompts():
        text_prompt = TextPrompt(text=prompt) if isinstance(prompt, str) else TextPrompt(token_ids=prompt)
        jobs += [
            Job(text_prompt, request.to_sampling_params(max_tokens=max_tokens, seed_offset=i))
            for i in range(request.n)
        ]
    return jobs


def _echo(request: CompletionRequest, job_index: int) -> str:
    prompt = request.prompts()[job_index // request.n]
    return prompt if request.echo and isinstance(prompt, str) else ""


def _completion(request: CompletionRequest, results: list[SequenceResult]) -> Completion:
    prompt_tokens = sum(r.prompt_tokens for i, r in enumerate(results) if i % request.n == 0)
    return Completion(
        id=new_id("cmpl"),
        created=now(),
        model=request.model,
        choices=[
            CompletionChoice(index=i, text=_echo(request, i) + r.text, finish_reason=r.finish_reason)
            for i, r in enumerate(results)
        ],
        usage=Usage.of(prompt_tokens, sum(r.completion_tokens for r in results)),
    )


async def create_completion(
    *,
    request: CompletionRequest,
    registry: ModelRegistry,
    default_max_tokens: int,
    note: UsageNote,
    cache: CacheLookup = NO_CACHE,
) -> Completion:
    backend = registry.text(request.model)
    if cached := await cache.get(Completion):
        note.count_cached(
            model=request.model, prompt_tokens=cached.usage.prompt_tokens if cached.usage else 0
        )
        return cached.model_copy(update={"id": new_id("cmpl"), "created": now()})
    completion = _completion(request, await run_all(backend, _jobs(request, default_max_tokens)))
    usage = completion.usage or Usage.of(0, 0)
    note.count(
        model=request.model, prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens
    )
    await cache.put(completion)
    return completion


async def stream_completion(
    *,
    request: CompletionRequest,
    registry: ModelRegistry,
    default_max_tokens: int,
    note: UsageNote,
    cache: CacheLookup = NO_CACHE,
) -> AsyncIterator[Completion]:
    backend = registry.text(request.model)
    include_usage = bool(request.stream_options and request.stream_options.include_usage)
    chunk_id, created = new_id("cmpl"), now()

    def chunk(choices: list[CompletionChoice], usage: Usage | None = None) -> Completion:
        return Completion(id=chunk_id, created=created, model=request.model, choices=choices, usage=usage)

    if cached := await cache.get(Completion):
        usage = cached.usage or Usage.of(0, 0)
        note.count_cached(model=request.model, prompt_tokens=usage.prompt_tokens)
        for choice in cached.choices:
            yield chunk([choice])
        if include_usage:
            yield chunk([], usage)
        return

    jobs = _jobs(request, default_max_tokens)
    transcript = Transcript(len(jobs))
    prompt_tokens, completion_tokens = 0, 0
    echoed: set[int] = set()
    async for index, piece in stream_all(backend, jobs):
        transcript.add(index, piece)
        text = piece.text
        if index not in echoed:
            echoed.add(index)
            text = _echo(request, index) + text
        if text or piece.finish_reason:
            yield chunk([CompletionChoice(index=index, text=text, finish_reason=piece.finish_reason)])
        if piece.finish_reason:
            prompt_tokens += piece.prompt_tokens if index % request.n == 0 else 0
            completion_tokens += piece.completion_tokens
            note.count(model=request.model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    if include_usage:
        yield chunk([], Usage.of(prompt_tokens, completion_tokens))
    if results := transcript.results():
        await cache.put(_completion(request, results))
