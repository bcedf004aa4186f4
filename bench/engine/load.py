"""HTTP load: N concurrent streaming chat completions through the openai SDK, timed per content delta."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from openai import AsyncOpenAI

from bench.engine.prompts import Prompt


@dataclass(frozen=True)
class Target:
    """One OpenAI-compatible server under test and what its requests need."""

    api_url: str
    model: str
    extra_body: dict[str, Any] = field(default_factory=dict)


@dataclass
class StreamTrace:
    start: float
    end: float = 0.0
    deltas: list[float] = field(default_factory=list)  # arrival times of non-empty content deltas
    completion_tokens: int = 0
    prompt_tokens: int = 0


@dataclass(frozen=True)
class RoundStats:
    streams: int
    wall_s: float
    completion_tokens: int
    tokens_per_s: float
    ttft_p50_ms: float
    ttft_p99_ms: float
    itl_p50_ms: float
    itl_p99_ms: float
    mean_prompt_tokens: float
    short_streams: int  # streams that ended before max_tokens

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def client_for(target: Target) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=target.api_url, api_key="unused", max_retries=0, timeout=900)


async def run_round(
    client: AsyncOpenAI, target: Target, prompts: Sequence[Prompt], max_tokens: int
) -> RoundStats:
    """Start one stream per prompt at once; aggregate tokens/s is usage tokens over the round's wall time."""
    start = time.perf_counter()
    traces = await asyncio.gather(*(_stream(client, target, p, max_tokens) for p in prompts))
    wall = max(t.end for t in traces) - start
    tokens = sum(t.completion_tokens for t in traces)
    ttft = [(t.deltas[0] - t.start) * 1000 for t in traces if t.deltas]
    itl = [gap * 1000 for t in traces for gap in np.diff(t.deltas)]
    return RoundStats(
        streams=len(prompts),
        wall_s=wall,
        completion_tokens=tokens,
        tokens_per_s=tokens / wall,
        ttft_p50_ms=_pct(ttft, 50),
        ttft_p99_ms=_pct(ttft, 99),
        itl_p50_ms=_pct(itl, 50),
        itl_p99_ms=_pct(itl, 99),
        mean_prompt_tokens=float(np.mean([t.prompt_tokens for t in traces])),
        short_streams=sum(t.completion_tokens < max_tokens for t in traces),
    )


async def _stream(client: AsyncOpenAI, target: Target, prompt: Prompt, max_tokens: int) -> StreamTrace:
    trace = StreamTrace(start=time.perf_counter())
    content_chunks = 0
    stream = await client.chat.completions.create(
        model=target.model,
        messages=[{"role": "user", "content": prompt.content}],
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        extra_body=target.extra_body or None,
    )
    async for chunk in stream:
        now = time.perf_counter()
        if any(choice.delta.content for choice in chunk.choices):
            trace.deltas.append(now)
            content_chunks += 1
        if chunk.usage is not None:
            trace.completion_tokens = chunk.usage.completion_tokens
            trace.prompt_tokens = chunk.usage.prompt_tokens
    trace.end = time.perf_counter()
    if not trace.completion_tokens:  # a server that sends no usage in streams: one token per chunk
        trace.completion_tokens = content_chunks
    return trace


def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")
