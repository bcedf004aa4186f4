"""The engine in its own process, through the text backend: what users get from it is what the in-thread
engine gives. The loaders are module-level functions: the engine process imports them to load the model."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

import llmapi.backends.local
from llmapi.backends.base import GenerationChunk, TextPrompt
from llmapi.backends.local.text import LocalTextBackend
from llmapi.config import ConfigError, EngineSettings
from llmapi.engine.constraint import Constraint
from llmapi.engine.engine_process import EngineProcess
from llmapi.engine.engine_stats import EngineStats
from llmapi.engine.errors import EngineStoppedError
from llmapi.engine.sampling_params import SamplingParams
from llmapi.errors import ContextLengthExceededError, ServiceUnavailableError, UnsupportedError
from llmapi.model_specs import ModelSpec

ASSETS = Path(llmapi.backends.local.__file__).parent / "assets" / "gpt2-124m-random"
CONTEXT = 64
POISON = 13
"""A prompt holding this token makes the failing model's forward pass raise."""
SPEC = ModelSpec(id="tiny", task="text-generation", backend="transformers", source="tiny-test-model")
SETTINGS = EngineSettings(dtype="float32", threads=1, max_batch_size=2, max_waiting=4)
GREEDY = SamplingParams(max_tokens=10, temperature=0.0, ignore_eos=True, logprobs=2)
LONG = SamplingParams(max_tokens=50, ignore_eos=True)


def tiny_model(source: str, dtype: torch.dtype) -> tuple[Any, Any]:
    tokenizer = PreTrainedTokenizerFast.from_pretrained(ASSETS)
    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=len(tokenizer) + 64, n_positions=CONTEXT)
    return GPT2LMHeadModel(config).eval().to(dtype), tokenizer


def failing_model(source: str, dtype: torch.dtype) -> tuple[Any, Any]:
    model, tokenizer = tiny_model(source, dtype)
    model.register_forward_pre_hook(_refuse_poison, with_kwargs=True)
    return model, tokenizer


def _refuse_poison(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
    if POISON in kwargs["input_ids"]:
        raise RuntimeError("the poisoned token")


def missing_model(source: str, dtype: torch.dtype) -> tuple[Any, Any]:
    raise ConfigError(f"model source '{source}' looks like a local path, but it is not a directory")


async def collect(stream: AsyncIterator[GenerationChunk]) -> list[GenerationChunk]:
    return [chunk async for chunk in stream]


async def wait_until(condition: Callable[[], bool], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def alive(pid: int) -> bool:
    """Running: not gone, and not a zombie its new parent has yet to reap."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
async def in_process() -> AsyncIterator[LocalTextBackend]:
    steps: list[int] = []

    class Recorder:
        def on_step(
            self, *, batch_size: int, decode_tokens: int, prefill_tokens: int, seconds: float
        ) -> None:
            steps.append(batch_size)

    settings = SETTINGS.model_copy(update={"process": True})
    backend = LocalTextBackend(SPEC, settings, load=tiny_model, observer=Recorder())
    backend.steps = steps  # type: ignore[attr-defined]
    await backend.start()
    yield backend
    await backend.close()


async def test_greedy_tokens_are_those_of_the_in_thread_engine(in_process: LocalTextBackend) -> None:
    in_thread = LocalTextBackend(SPEC, SETTINGS, load=tiny_model)
    await in_thread.start()
    try:
        prompts = [TextPrompt(text="def main():"), TextPrompt(token_ids=(5, 6, 7, 8))]
        expected = [await collect(in_thread.generate(prompt, GREEDY)) for prompt in prompts]
    finally:
        await in_thread.close()
    got = await asyncio.gather(*(collect(in_process.generate(prompt, GREEDY)) for prompt in prompts))
    assert got == expected  # text, token logprobs and usage, chunk by chunk
    assert in_process.card.context_length == CONTEXT


async def test_outputs_stream_and_steps_reach_the_observer(in_process: LocalTextBackend) -> None:
    before = len(in_process.steps)  # type: ignore[attr-defined]
    chunks = await collect(
        in_process.generate(TextPrompt(text="a"), SamplingParams(max_tokens=8, ignore_eos=True))
    )
    assert len(chunks) > 1
    assert chunks[-1].finish_reason == "length"
    assert chunks[-1].completion_tokens == 8
    assert len(in_process.steps) - before == 8  # type: ignore[attr-defined]
    assert in_process.stats() == EngineStats(running=0, waiting=0)


async def test_closing_a_stream_aborts_its_request_and_frees_its_slot(in_process: LocalTextBackend) -> None:
    streams = [in_process.generate(TextPrompt(text="a"), LONG) for _ in range(2)]  # both batch slots
    for stream in streams:
        await anext(stream)
    assert in_process.stats().running == 2
    for stream in streams:
        await stream.aclose()
    assert in_process.stats() == EngineStats(running=0, waiting=0)
    chunks = await collect(in_process.generate(TextPrompt(text="b"), SamplingParams(max_tokens=3)))
    assert chunks[-1].finish_reason is not None


async def test_engine_refusals_reach_the_client_as_in_thread(in_process: LocalTextBackend) -> None:
    # max_tokens past the context is cut by the engine; a prompt filling it is refused by the backend
    chunks = await collect(in_process.generate(TextPrompt(token_ids=(5,) * (CONTEXT - 2)), LONG))
    assert (chunks[-1].finish_reason, chunks[-1].completion_tokens) == ("length", 2)
    with pytest.raises(ContextLengthExceededError):
        await anext(in_process.generate(TextPrompt(token_ids=(5,) * CONTEXT), LONG))


async def test_a_grammar_the_engine_cannot_enforce_is_refused(in_process: LocalTextBackend) -> None:
    params = SamplingParams(constraint=Constraint("json_schema", '{"type": "object", "bad": '))
    with pytest.raises(UnsupportedError, match="cannot enforce"):
        await anext(in_process.generate(TextPrompt(text="a"), params))


async def test_a_model_that_does_not_load_raises_the_loaders_error() -> None:
    backend = LocalTextBackend(SPEC, SETTINGS.model_copy(update={"process": True}), load=missing_model)
    with pytest.raises(ConfigError, match="looks like a local path"):
        await backend.start()
    with pytest.raises(ServiceUnavailableError, match="not running"):
        await anext(backend.generate(TextPrompt(text="a"), GREEDY))


async def test_a_failed_step_fails_its_requests_and_the_engine_goes_on() -> None:
    settings = SETTINGS.model_copy(update={"process": True, "model_code": "transformers"})
    backend = LocalTextBackend(SPEC, settings, load=failing_model)
    await backend.start()
    try:
        with pytest.raises(RuntimeError, match="generation failed inside the engine: the poisoned token"):
            await collect(backend.generate(TextPrompt(token_ids=(5, POISON)), GREEDY))
        chunks = await collect(backend.generate(TextPrompt(token_ids=(5, 6)), SamplingParams(max_tokens=3)))
        assert chunks[-1].finish_reason is not None
    finally:
        await backend.close()


async def test_close_ends_running_streams_and_the_engine_process() -> None:
    engine = EngineProcess(_build_tiny, max_batch_size=2, max_waiting=2, environment={})
    await engine.start()
    pid = engine.pid
    assert pid is not None
    stream = engine.generate([5, 6], LONG, "r")
    await anext(stream)
    await engine.close()
    assert not alive(pid)
    with pytest.raises(EngineStoppedError, match="shutting down"):
        async for _ in stream:
            pass


def _build_tiny(observer: Any) -> Any:
    from llmapi.backends.local.text import _build_engine

    return _build_engine("tiny", SETTINGS, tiny_model, observer)


PARENT = """
import asyncio, sys
from llmapi.engine.constraint import Constraint
from llmapi.engine.engine_process import EngineProcess
from tests.engine.test_engine_process import _build_tiny

async def main():
    engine = EngineProcess(_build_tiny, max_batch_size=2, max_waiting=2)
    await engine.start()
    print(engine.pid, flush=True)
    await asyncio.sleep(600)

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_the_engine_process_exits_when_its_parent_dies(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    root = Path(__file__).parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "src")])}
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, env=env, cwd=root)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert alive(child)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 30
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)
