"""Text completions: prompts in, continuations (or a stream of them) out."""

from __future__ import annotations

from collections.abc import AsyncIterator

from llmapi.backends.base import TextPrompt
from llmapi.protocol.common import Usage, logit_bias_pairs
from llmapi.protocol.completions import Completion, CompletionChoice, CompletionRequest
from llmapi.services.logprobs import completion_logprob_count, completion_logprobs
from llmapi.services.response_format import response_constraint
from llmapi.services.text_jobs import GeneratedTexts, Generation, Job, Transcript, choices, new_id, now


def _jobs(request: CompletionRequest, max_tokens: int) -> list[Job]:
    """n jobs per prompt; choice index = prompt index * n + choice, as OpenAI numbers them."""
    jobs = []
    logprobs, logit_bias = completion_logprob_count(request), logit_bias_pairs(request.logit_bias)
    constraint = response_constraint(request.response_format)
    for prompt in request.prompts():
        text_prompt = TextPrompt(text=prompt) if isinstance(prompt, str) else TextPrompt(token_ids=prompt)
        jobs += choices(
            text_prompt,
            request,
            n=request.n,
            max_tokens=max_tokens,
            logprobs=logprobs,
            logit_bias=logit_bias,
            constraint=constraint,
        )
    return jobs


def _echo(request: CompletionRequest, job_index: int) -> str:
    prompt = request.prompts()[job_index // request.n]
    return prompt if request.echo and isinstance(prompt, str) else ""


def _completion(request: CompletionRequest, model: str, texts: GeneratedTexts) -> Completion:
    return Completion(
        id=new_id("cmpl"),
        created=now(),
        model=model,
        choices=[
            CompletionChoice(
                index=i,
                text=_echo(request, i) + r.text,
                logprobs=None if request.logprobs is None else completion_logprobs(r.logprobs),
                finish_reason=r.finish_reason,
            )
            for i, r in enumerate(texts.results)
        ],
        usage=Usage.of(texts.prompt_tokens, texts.completion_tokens),
    )


async def create_completion(*, request: CompletionRequest, generation: Generation) -> Completion:
    return _completion(request, generation.model, await generation.run(_jobs(request, generation.max_tokens)))


async def stream_completion(
    *, request: CompletionRequest, generation: Generation
) -> AsyncIterator[Completion]:
    include_usage = bool(request.stream_options and request.stream_options.include_usage)
    chunk_id, created = new_id("cmpl"), now()

    def chunk(choices: list[CompletionChoice], usage: Usage | None = None) -> Completion:
        return Completion(id=chunk_id, created=created, model=generation.model, choices=choices, usage=usage)

    jobs = _jobs(request, generation.max_tokens)
    transcript = Transcript(jobs)
    echoed: set[int] = set()
    async for index, piece in generation.stream(jobs):
        transcript.add(index, piece)
        text = piece.text
        if index not in echoed:
            echoed.add(index)
            text = _echo(request, index) + text
        logprobs = None if request.logprobs is None else completion_logprobs(piece.logprobs)
        if text or piece.finish_reason or piece.logprobs:
            choice = CompletionChoice(
                index=index, text=text, logprobs=logprobs, finish_reason=piece.finish_reason
            )
            yield chunk([choice])
    if include_usage:
        yield chunk([], Usage.of(*transcript.tokens()))
