from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

import llmapi.backends.local
from llmapi.backends.base import (
    ChatMessage,
    ChatPrompt,
    GenerationChunk,
    TextGenerationBackend,
    TextPrompt,
)
from llmapi.backends.local.text import LocalTextBackend
from llmapi.config import EngineSettings
from llmapi.engine.sampling_params import SamplingParams
from llmapi.errors import (
    ContextLengthExceededError,
    InvalidRequestError,
    ServerOverloadedError,
    ServiceUnavailableError,
)
from llmapi.model_specs import ModelSpec

ASSETS = Path(llmapi.backends.local.__file__).parent / "assets" / "gpt2-124m-random"
CONTEXT = 64
SPEC = ModelSpec(id="tiny", task="text-generation", backend="transformers", source="tiny-test-model")


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from a second thread, and lose a lot when another process holds the core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_load() -> Callable[[str, torch.dtype], tuple[Any, Any]]:
    """A loader returning a 2-layer GPT-2 (vocabulary larger than the tokenizer's, as the builtin's)."""
    tokenizer = PreTrainedTokenizerFast.from_pretrained(ASSETS)
    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=len(tokenizer) + 64, n_positions=CONTEXT)
    model = GPT2LMHeadModel(config).eval()
    return lambda source, dtype: (model.to(dtype), tokenizer)


@pytest.fixture
async def backend(
    tiny_load: Callable[[str, torch.dtype], tuple[Any, Any]],
) -> AsyncIterator[LocalTextBackend]:
    backend = LocalTextBackend(
        SPEC, EngineSettings(dtype="float32", max_batch_size=2, max_waiting=1), load=tiny_load
    )
    await backend.start()
    yield backend
    await backend.close()


async def collect(stream: AsyncIterator[GenerationChunk]) -> list[GenerationChunk]:
    return [chunk async for chunk in stream]


async def test_it_is_a_text_generation_backend_with_a_card(backend: LocalTextBackend) -> None:
    typed: TextGenerationBackend = backend  # the protocol is checked statically
    card = typed.card
    assert (card.id, card.task, card.owned_by, card.context_length) == (
        "tiny",
        "text-generation",
        "llmapi",
        CONTEXT,
    )
    assert backend.card.created == card.created


async def test_a_chat_prompt_uses_the_chat_template_and_streams_to_a_final_chunk(
    backend: LocalTextBackend,
) -> None:
    prompt = ChatPrompt(messages=(ChatMessage(role="user", content="Say hi"),))
    expected_prompt = backend.tokenizer.encode("<|im_start|>user\nSay hi<|im_end|>\n<|im_start|>assistant\n")
    chunks = await collect(backend.generate(prompt, SamplingParams(max_tokens=8, ignore_eos=True)))
    final = chunks[-1]
    assert final.finish_reason == "length"
    assert (final.prompt_tokens, final.completion_tokens) == (len(expected_prompt), 8)
    assert all(chunk.finish_reason is None for chunk in chunks[:-1])


async def test_text_and_token_id_prompts_give_the_same_greedy_text(backend: LocalTextBackend) -> None:
    params = SamplingParams(max_tokens=6, temperature=0.0, ignore_eos=True)
    ids = tuple(backend.tokenizer.encode("def main():"))
    from_text = await collect(backend.generate(TextPrompt(text="def main():"), params))
    from_ids = await collect(backend.generate(TextPrompt(token_ids=ids), params))
    assert "".join(c.text for c in from_text) == "".join(c.text for c in from_ids)


async def test_an_empty_prompt_starts_from_the_bos_token(backend: LocalTextBackend) -> None:
    chunks = await collect(
        backend.generate(TextPrompt(text=""), SamplingParams(max_tokens=2, ignore_eos=True))
    )
    assert chunks[-1].prompt_tokens == 1


async def test_a_prompt_that_fills_the_context_is_refused_before_any_chunk(backend: LocalTextBackend) -> None:
    stream = backend.generate(TextPrompt(token_ids=(5,) * CONTEXT), SamplingParams(max_tokens=1))
    with pytest.raises(ContextLengthExceededError) as refused:
        await anext(stream)
    assert refused.value.param == "prompt"
    assert str(CONTEXT) in refused.value.message
    assert "Shorten the prompt" in refused.value.message


async def test_a_generation_ends_where_the_context_ends(backend: LocalTextBackend) -> None:
    params = SamplingParams(max_tokens=50, ignore_eos=True)
    chunks = [chunk async for chunk in backend.generate(TextPrompt(token_ids=(5,) * (CONTEXT - 4)), params)]
    assert chunks[-1].finish_reason == "length"
    assert chunks[-1].completion_tokens == 4


async def test_a_chat_that_does_not_fit_names_messages(backend: LocalTextBackend) -> None:
    prompt = ChatPrompt(messages=(ChatMessage(role="user", content="word " * 100),))
    with pytest.raises(ContextLengthExceededError) as refused:
        await anext(backend.generate(prompt, SamplingParams(max_tokens=1)))
    assert refused.value.param == "messages"


async def test_token_ids_outside_the_vocabulary_are_refused(backend: LocalTextBackend) -> None:
    with pytest.raises(InvalidRequestError, match="between 0 and 8191"):
        await anext(backend.generate(TextPrompt(token_ids=(8192,)), SamplingParams()))


async def test_a_full_queue_is_refused_and_closing_streams_frees_capacity(backend: LocalTextBackend) -> None:
    long = SamplingParams(max_tokens=60, ignore_eos=True)
    running = [backend.generate(TextPrompt(text="a"), long) for _ in range(2)]
    for stream in running:
        await anext(stream)
    waiting = backend.generate(TextPrompt(text="a"), long)
    waiting_first = asyncio.create_task(anext(waiting))
    await asyncio.sleep(
        0
    )  # the waiting request is submitted: max_batch_size=2 running, max_waiting=1 waiting
    with pytest.raises(ServerOverloadedError) as refused:
        await anext(backend.generate(TextPrompt(text="a"), long))
    assert (refused.value.status_code, refused.value.code) == (503, "server_overloaded")
    assert refused.value.headers["Retry-After"] == "1"
    assert "1 requests are already waiting" in refused.value.message
    for stream in running:
        await stream.aclose()
    await waiting_first
    await waiting.aclose()
    chunks = await collect(
        backend.generate(TextPrompt(text="a"), SamplingParams(max_tokens=2, ignore_eos=True))
    )
    assert chunks[-1].finish_reason == "length"


async def test_streams_running_when_the_model_closes_end_with_service_unavailable(
    tiny_load: Callable[[str, torch.dtype], tuple[Any, Any]],
) -> None:
    class SlowSteps:  # the generation cannot end on its own before close() stops it
        def on_step(
            self, *, batch_size: int, decode_tokens: int, prefill_tokens: int, seconds: float
        ) -> None:
            time.sleep(0.01)

    backend = LocalTextBackend(SPEC, EngineSettings(dtype="float32"), load=tiny_load, observer=SlowSteps())
    await backend.start()
    stream = backend.generate(TextPrompt(text="a"), SamplingParams(max_tokens=60, ignore_eos=True))
    await anext(stream)
    await backend.close()
    with pytest.raises(ServiceUnavailableError, match="shutting down") as refused:
        await collect(stream)
    assert (refused.value.status_code, refused.value.code) == (503, "service_unavailable")
    with pytest.raises(ServiceUnavailableError, match="not running"):
        await anext(backend.generate(TextPrompt(text="a"), SamplingParams()))


async def test_the_builtin_model_loads_says_it_is_random_and_generates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    spec = ModelSpec(
        id="gpt2-124m-random",
        task="text-generation",
        backend="transformers",
        source="builtin:gpt2-124m-random",
    )
    backend = LocalTextBackend(spec, EngineSettings(max_batch_size=2))
    with caplog.at_level(logging.WARNING, logger="llmapi.backends.local.text"):
        await backend.start()
    try:
        assert "random weights" in caplog.text
        assert backend.card.context_length == 1024
        prompt = ChatPrompt(messages=(ChatMessage(role="user", content="Hello"),))
        chunks = await collect(backend.generate(prompt, SamplingParams(max_tokens=4, ignore_eos=True)))
        assert chunks[-1].completion_tokens == 4
    finally:
        await backend.close()


async def test_engine_settings_and_the_step_observer_reach_the_engine() -> None:
    tokenizer = PreTrainedTokenizerFast.from_pretrained(ASSETS)
    torch.manual_seed(0)
    config = GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=len(tokenizer), n_positions=CONTEXT)
    model = GPT2LMHeadModel(config).eval()  # its own model: int8 quantization rewrites its layers
    steps: list[int] = []

    class Recorder:
        def on_step(
            self, *, batch_size: int, decode_tokens: int, prefill_tokens: int, seconds: float
        ) -> None:
            steps.append(prefill_tokens)

    settings = EngineSettings(
        dtype="float32", quantization="int8", max_prefill_tokens=16, model_code="transformers"
    )
    backend = LocalTextBackend(
        SPEC, settings, load=lambda source, dtype: (model, tokenizer), observer=Recorder()
    )
    await backend.start()
    try:
        prompt = TextPrompt(token_ids=list(range(1, 41)))
        chunks = await collect(backend.generate(prompt, SamplingParams(max_tokens=2, ignore_eos=True)))
    finally:
        await backend.close()
    assert chunks[-1].completion_tokens == 2
    assert steps == [16, 16, 8, 0]  # prefill tokens per step: the 40-token prompt in chunks of 16
    assert type(model.lm_head).__name__ == "Int8Linear"


IM_END = 2  # the builtin tokenizer's <|im_end|>, ChatML's end of turn


async def test_the_card_lists_logprobs_and_logit_bias(backend: LocalTextBackend) -> None:
    assert {"logprobs", "logit_bias"} <= backend.card.features


async def test_the_model_stops_at_its_end_of_turn_token_unless_eos_is_ignored(
    backend: LocalTextBackend,
) -> None:
    forced = SamplingParams(max_tokens=5, temperature=0.0, logit_bias=((IM_END, 100.0),))
    chunks = await collect(backend.generate(TextPrompt(text="def main():"), forced))
    assert (chunks[-1].finish_reason, chunks[-1].completion_tokens, "".join(c.text for c in chunks)) == (
        "stop",
        1,
        "",
    )
    ignoring = SamplingParams(max_tokens=5, temperature=0.0, logit_bias=((IM_END, 100.0),), ignore_eos=True)
    chunks = await collect(backend.generate(TextPrompt(text="def main():"), ignoring))
    assert (chunks[-1].finish_reason, chunks[-1].completion_tokens) == ("length", 5)


async def test_a_stop_string_that_is_a_special_token_stops_as_that_token(backend: LocalTextBackend) -> None:
    params = SamplingParams(
        max_tokens=5, temperature=0.0, logit_bias=((IM_END, 100.0),), ignore_eos=True, stop=("<|im_end|>",)
    )
    chunks = await collect(backend.generate(TextPrompt(text="def main():"), params))
    assert (chunks[-1].finish_reason, chunks[-1].completion_tokens) == ("stop", 1)


async def test_logit_bias_outside_the_vocabulary_is_refused(backend: LocalTextBackend) -> None:
    with pytest.raises(InvalidRequestError, match="0 to 8191") as refused:
        await anext(backend.generate(TextPrompt(text="a"), SamplingParams(logit_bias=((8192, 1.0),))))
    assert refused.value.param == "logit_bias"


async def test_every_generated_token_comes_with_its_logprobs_alongside_its_text(
    backend: LocalTextBackend,
) -> None:
    params = SamplingParams(max_tokens=8, logprobs=2, ignore_eos=True, seed=3)
    chunks = await collect(backend.generate(TextPrompt(text="def main():"), params))
    logprobs = [lp for c in chunks for lp in c.logprobs]
    assert len(logprobs) == chunks[-1].completion_tokens == 8
    assert all(len(lp.top) == 2 and lp.logprob <= 0.0 for lp in logprobs)
    assert b"".join(bytes(lp.token_bytes) for lp in logprobs).decode() == "".join(c.text for c in chunks)
    assert all(
        not c.logprobs
        for c in await collect(backend.generate(TextPrompt(text="a"), SamplingParams(max_tokens=3)))
    )
