from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from llmapi.engine.async_engine import AsyncEngine
from llmapi.engine.errors import EngineOverloadedError, EngineStoppedError, PromptTooLongError
from llmapi.engine.llm_engine import LLMEngine
from llmapi.engine.request_output import RequestOutput
from llmapi.engine.sampling_params import SamplingParams

LONG = SamplingParams(max_tokens=200, ignore_eos=True)
PROMPT = [5, 6, 7]


@pytest.fixture
async def make_async(make_engine: Callable[..., LLMEngine]) -> AsyncIterator[Callable[..., AsyncEngine]]:
    started: list[AsyncEngine] = []

    def make(max_batch_size: int = 8, max_waiting: int = 8) -> AsyncEngine:
        engine = AsyncEngine(make_engine(max_batch_size=max_batch_size), max_waiting=max_waiting)
        engine.start()
        started.append(engine)
        return engine

    yield make
    for engine in started:
        await engine.close()


async def collect(stream: AsyncIterator[RequestOutput]) -> list[RequestOutput]:
    return [output async for output in stream]


def active(engine: AsyncEngine) -> int:
    """Requests accepted and not finished, running or waiting."""
    stats = engine.stats()
    return stats.running + stats.waiting


async def wait_until(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


async def test_concurrent_requests_stream_to_the_end(make_async: Callable[..., AsyncEngine]) -> None:
    engine = make_async()
    params = SamplingParams(max_tokens=12, ignore_eos=True)
    results = await asyncio.gather(*(collect(engine.generate(PROMPT, params, f"r{i}")) for i in range(4)))
    for outputs in results:
        assert len(outputs) == 12
        assert outputs[-1].finish_reason == "length"
    assert (engine.stats().running, engine.stats().waiting) == (0, 0)


async def test_closing_the_stream_aborts_the_request_and_frees_its_slot(
    make_async: Callable[..., AsyncEngine],
) -> None:
    engine = make_async(max_batch_size=1)
    stream = engine.generate(PROMPT, LONG, "gone")
    await anext(stream)
    await stream.aclose()  # what a client disconnect does to the response's generator
    assert active(engine) == 0
    # The only slot is free again: the next request runs to the end.
    outputs = await collect(engine.generate(PROMPT, SamplingParams(max_tokens=3), "next"))
    assert outputs[-1].finished
    await wait_until(lambda: not engine.engine.has_unfinished())


async def test_cancelling_the_consumer_task_aborts_the_request(
    make_async: Callable[..., AsyncEngine],
) -> None:
    engine = make_async()
    first_token = asyncio.Event()

    async def consume() -> None:
        async for _ in engine.generate(PROMPT, LONG, "cancelled"):
            first_token.set()

    task = asyncio.create_task(consume())
    await first_token.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until(lambda: not engine.engine.has_unfinished())
    assert active(engine) == 0


async def test_a_full_waiting_queue_refuses_the_next_request(
    make_async: Callable[..., AsyncEngine],
) -> None:
    engine = make_async(max_batch_size=1, max_waiting=1)
    running = engine.generate(PROMPT, LONG, "running")
    waiting = engine.generate(PROMPT, LONG, "waiting")
    await anext(running)
    waiting_task = asyncio.create_task(anext(waiting))
    await wait_until(lambda: (engine.stats().running, engine.stats().waiting) == (1, 1))
    with pytest.raises(EngineOverloadedError) as refused:
        await anext(engine.generate(PROMPT, LONG, "refused"))
    assert refused.value.max_waiting == 1
    await running.aclose()
    await waiting_task  # the waiting request got the slot
    await waiting.aclose()


async def test_the_event_loop_stays_responsive_during_generation(
    make_async: Callable[..., AsyncEngine],
) -> None:
    engine = make_async()
    ticks = 0
    worst_gap = 0.0

    async def heartbeat() -> None:
        nonlocal ticks, worst_gap
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            worst_gap = max(worst_gap, now - last)
            last = now
            ticks += 1

    beat = asyncio.create_task(heartbeat())
    started = time.monotonic()
    params = SamplingParams(max_tokens=150, ignore_eos=True)
    await asyncio.gather(*(collect(engine.generate(PROMPT * 30, params, f"r{i}")) for i in range(8)))
    elapsed = time.monotonic() - started
    beat.cancel()
    # A blocked loop would tick a handful of times; a free one ticks about every 10 ms (slower under load).
    assert ticks >= elapsed / 0.01 * 0.25
    assert worst_gap < 0.2


async def test_the_engine_thread_sleeps_when_idle(make_async: Callable[..., AsyncEngine]) -> None:
    engine = make_async()
    await collect(engine.generate(PROMPT, SamplingParams(max_tokens=2), "warm"))
    cpu_before = time.process_time()
    await asyncio.sleep(0.3)
    assert time.process_time() - cpu_before < 0.1  # a busy loop would burn the whole 0.3 s


async def test_an_invalid_request_fails_alone(make_async: Callable[..., AsyncEngine]) -> None:
    engine = make_async()
    with pytest.raises(PromptTooLongError):
        await collect(engine.generate([1] * 300, SamplingParams(max_tokens=1), "too-long"))
    outputs = await collect(engine.generate(PROMPT, SamplingParams(max_tokens=2), "fine"))
    assert outputs[-1].finished


async def test_a_failing_step_fails_its_requests_and_the_loop_lives_on(
    make_async: Callable[..., AsyncEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_async()
    runner = engine.engine.model_runner
    real_run = runner.run
    calls = 0

    def flaky_run(batch: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("boom")
        return real_run(batch)

    monkeypatch.setattr(runner, "run", flaky_run)
    with pytest.raises(RuntimeError, match="boom"):
        await collect(engine.generate(PROMPT, LONG, "victim"))
    outputs = await collect(engine.generate(PROMPT, SamplingParams(max_tokens=2), "survivor"))
    assert outputs[-1].finished


async def test_close_fails_requests_still_running(make_async: Callable[..., AsyncEngine]) -> None:
    engine = make_async()
    stream = engine.generate(PROMPT, LONG, "interrupted")
    await anext(stream)
    await engine.close()
    with pytest.raises(EngineStoppedError) as stopped:
        await collect(stream)
    assert stopped.value.shutting_down
    with pytest.raises(EngineStoppedError):
        await anext(engine.generate(PROMPT, LONG, "too-late"))
