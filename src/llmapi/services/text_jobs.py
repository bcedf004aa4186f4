"""The sequences one text-generation request runs (n choices of one or several prompts), and running them
through the request's meter: answered from the response cache when it may be, counted, stored."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass

from llmapi.backends.base import GenerationChunk, Prompt, TextGenerationBackend
from llmapi.engine.constraint import Constraint
from llmapi.engine.sampling_params import SamplingParams
from llmapi.engine.token_logprob import TokenLogprob
from llmapi.protocol.common import SamplingFields
from llmapi.services.metering import Counted, Meter, MeteredBackend
from llmapi.types import FinishReason


@dataclass(frozen=True, slots=True)
class Job:
    """One sequence to generate. Every sequence prefills its prompt, so every sequence counts its prompt's
    tokens."""

    prompt: Prompt
    params: SamplingParams


@dataclass(frozen=True, slots=True)
class SequenceResult:
    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    logprobs: tuple[TokenLogprob, ...] = ()


def sampling_params(
    request: SamplingFields,
    *,
    max_tokens: int,
    choice: int = 0,
    logprobs: int | None = None,
    logit_bias: tuple[tuple[int, float], ...] = (),
    constraint: Constraint | None = None,
) -> SamplingParams:
    """Engine parameters for one sequence of a request; `choice` keeps the n choices of a seeded request
    apart. `logprobs`: None for none, else how many alternatives a token."""
    top_p = 1.0 if request.top_p is None else request.top_p
    top_k = request.top_k or 0
    if top_p == 0.0:
        top_p, top_k = 1.0, 1
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=1.0 if request.temperature is None else request.temperature,
        top_p=top_p,
        top_k=top_k,
        presence_penalty=request.presence_penalty or 0.0,
        frequency_penalty=request.frequency_penalty or 0.0,
        seed=None if request.seed is None else (request.seed + choice) % 2**64,
        stop=request.stop_sequences(),
        ignore_eos=request.ignore_eos,
        logprobs=logprobs,
        logit_bias=logit_bias,
        constraint=constraint,
    )


def choices(
    prompt: Prompt,
    request: SamplingFields,
    *,
    n: int,
    max_tokens: int,
    logprobs: int | None = None,
    logit_bias: tuple[tuple[int, float], ...] = (),
    constraint: Constraint | None = None,
) -> list[Job]:
    """The n jobs of one prompt."""
    return [
        Job(
            prompt,
            sampling_params(
                request,
                max_tokens=max_tokens,
                choice=i,
                logprobs=logprobs,
                logit_bias=logit_bias,
                constraint=constraint,
            ),
        )
        for i in range(n)
    ]


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


async def run_one(backend: TextGenerationBackend, job: Job) -> SequenceResult:
    parts: list[str] = []
    logprobs: list[TokenLogprob] = []
    last = GenerationChunk(text="")
    async with aclosing(backend.generate(job.prompt, job.params)) as chunks:
        async for chunk in chunks:
            parts.append(chunk.text)
            logprobs += chunk.logprobs
            last = chunk
    return SequenceResult(
        text="".join(parts),
        finish_reason=last.finish_reason or "stop",
        prompt_tokens=last.prompt_tokens,
        completion_tokens=last.completion_tokens,
        logprobs=tuple(logprobs),
    )


async def run_all(backend: TextGenerationBackend, jobs: Sequence[Job]) -> list[SequenceResult]:
    """Every job to its end, concurrently (the engine batches them); a failure cancels the rest."""
    if len(jobs) == 1:
        return [await run_one(backend, jobs[0])]
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(run_one(backend, job)) for job in jobs]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None  # the first failure, as one job would have raised it
    return [task.result() for task in tasks]


async def stream_all(
    backend: TextGenerationBackend, jobs: Sequence[Job]
) -> AsyncGenerator[tuple[int, GenerationChunk]]:
    """Chunks of every job as they come, tagged with the job's index. Closing this stops every job."""
    if len(jobs) == 1:
        async with aclosing(backend.generate(jobs[0].prompt, jobs[0].params)) as chunks:
            async for chunk in chunks:
                yield 0, chunk
        return
    queue: asyncio.Queue[tuple[int, GenerationChunk] | BaseException | None] = asyncio.Queue()

    async def pump(index: int, job: Job) -> None:
        try:
            async with aclosing(backend.generate(job.prompt, job.params)) as chunks:
                async for chunk in chunks:
                    queue.put_nowait((index, chunk))
        except Exception as exc:
            queue.put_nowait(exc)
        finally:
            queue.put_nowait(None)

    tasks = [asyncio.create_task(pump(i, job)) for i, job in enumerate(jobs)]
    try:
        remaining = len(tasks)
        while remaining:
            item = await queue.get()
            if item is None:
                remaining -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Transcript:
    """What a stream of several jobs produced, gathered piece by piece as `run_all` would return it."""

    def __init__(self, jobs: Sequence[Job]) -> None:
        self._parts: list[list[str]] = [[] for _ in jobs]
        self._logprobs: list[list[TokenLogprob]] = [[] for _ in jobs]
        self._ends: list[GenerationChunk | None] = [None] * len(jobs)
        self._counts: list[tuple[int, int]] = [(0, 0)] * len(jobs)
        self._prompt_tokens = self._completion_tokens = 0

    def add(self, index: int, piece: GenerationChunk) -> None:
        self._parts[index].append(piece.text)
        self._logprobs[index] += piece.logprobs
        if piece.finish_reason:
            self._ends[index] = piece
        if piece.prompt_tokens or piece.completion_tokens:
            counted_prompt, counted_completion = self._counts[index]
            self._counts[index] = (piece.prompt_tokens, piece.completion_tokens)
            self._prompt_tokens += piece.prompt_tokens - counted_prompt
            self._completion_tokens += piece.completion_tokens - counted_completion

    def tokens(self) -> tuple[int, int]:
        """Prompt and completion tokens so far, as each sequence's latest piece counted them (a backend that
        counts only in a sequence's last piece: the finished sequences)."""
        return self._prompt_tokens, self._completion_tokens

    def results(self) -> list[SequenceResult] | None:
        """The finished jobs' results; None while any job is unfinished."""
        results = []
        for parts, logprobs, end in zip(self._parts, self._logprobs, self._ends, strict=True):
            if end is None or end.finish_reason is None:
                return None
            results.append(
                SequenceResult(
                    "".join(parts),
                    end.finish_reason,
                    end.prompt_tokens,
                    end.completion_tokens,
                    tuple(logprobs),
                )
            )
        return results


class GeneratedTexts(Counted):
    """What the cache keeps of a text-generation request: every sequence's result."""

    results: list[SequenceResult]

    @classmethod
    def of(cls, results: list[SequenceResult]) -> GeneratedTexts:
        """Every sequence counts its prompt (it prefilled it) and its completion."""
        return cls(
            prompt_tokens=sum(r.prompt_tokens for r in results),
            completion_tokens=sum(r.completion_tokens for r in results),
            results=results,
        )


class Generation(MeteredBackend[TextGenerationBackend]):
    """How one request generates text: up to `max_tokens` a sequence."""

    def __init__(
        self, backend: TextGenerationBackend, *, max_tokens: int, meter: Meter | None = None
    ) -> None:
        super().__init__(backend, meter=meter)
        self.max_tokens = max_tokens

    @property
    def model(self) -> str:
        return self.meter.model

    async def run(self, jobs: Sequence[Job]) -> GeneratedTexts:
        async def work() -> GeneratedTexts:
            return GeneratedTexts.of(await run_all(self.backend, jobs))

        return await self.meter.answer(GeneratedTexts, work)

    async def stream(self, jobs: Sequence[Job]) -> AsyncIterator[tuple[int, GenerationChunk]]:
        """Every job's chunks as `stream_all` gives them; a cached answer comes as one chunk a job. Usage
        grows as the pieces come, so a client that leaves early is charged for what it got, and the usage
        note says the answer was cut short until its last piece is out."""
        if (cached := await self.meter.cached(GeneratedTexts)) is not None:
            for index, r in enumerate(cached.results):
                yield (
                    index,
                    GenerationChunk(
                        r.text, r.finish_reason, r.prompt_tokens, r.completion_tokens, r.logprobs
                    ),
                )
            return
        transcript = Transcript(jobs)
        self.meter.usage.cut_short = True  # until the last piece is out
        async with aclosing(stream_all(self.backend, jobs)) as pieces:
            async for index, piece in pieces:
                transcript.add(index, piece)
                if piece.prompt_tokens or piece.completion_tokens:
                    self.meter.count(*transcript.tokens())
                yield index, piece
        self.meter.usage.cut_short = False
        if (results := transcript.results()) is not None:
            await self.meter.cache.put(GeneratedTexts.of(results))
