"""Running several sequences of one request (n choices, several prompts) on a text backend."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass

from llmapi.backends.base import GenerationChunk, Prompt, TextGenerationBackend
from llmapi.engine.request_output import FinishReason
from llmapi.engine.sampling_params import SamplingParams


@dataclass(frozen=True, slots=True)
class Job:
    prompt: Prompt
    params: SamplingParams


@dataclass(frozen=True, slots=True)
class SequenceResult:
    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


async def run_one(backend: TextGenerationBackend, job: Job) -> SequenceResult:
    parts: list[str] = []
    last = GenerationChunk(text="")
    async with aclosing(backend.generate(job.prompt, job.params)) as chunks:
        async for chunk in chunks:
            parts.append(chunk.text)
            last = chunk
    return SequenceResult(
        text="".join(parts),
        finish_reason=last.finish_reason or "stop",
        prompt_tokens=last.prompt_tokens,
        completion_tokens=last.completion_tokens,
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
) -> AsyncIterator[tuple[int, GenerationChunk]]:
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

    def __init__(self, jobs: int) -> None:
        self._parts: list[list[str]] = [[] for _ in range(jobs)]
        self._ends: list[GenerationChunk | None] = [None] * jobs

    def add(self, index: int, piece: GenerationChunk) -> None:
        self._parts[index].append(piece.text)
        if piece.finish_reason:
            self._ends[index] = piece

    def results(self) -> list[SequenceResult] | None:
        """The finished jobs' results; None while any job is unfinished."""
        results = []
        for parts, end in zip(self._parts, self._ends, strict=True):
            if end is None or end.finish_reason is None:
                return None
            results.append(
                SequenceResult("".join(parts), end.finish_reason, end.prompt_tokens, end.completion_tokens)
            )
        return results
