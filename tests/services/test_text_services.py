"""The text services as plain functions: a request and a Generation in, a response or chunks out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from llmapi.auth.principal import Principal
from llmapi.auth.scopes import ROLE_SCOPES
from llmapi.backends.base import GenerationChunk, Prompt
from llmapi.cache.memory_store import MemoryCacheStore
from llmapi.config import CacheSettings
from llmapi.engine.sampling_params import SamplingParams
from llmapi.observability.gateway_metrics import GatewayMetrics
from llmapi.observability.metrics import new_metrics_registry
from llmapi.protocol.chat import ChatCompletionRequest
from llmapi.protocol.completions import CompletionRequest
from llmapi.protocol.generate import GenerateTextRequest
from llmapi.services.chat import create_chat_completion, stream_chat_completion
from llmapi.services.completions import create_completion, stream_completion
from llmapi.services.generate import generate_text, stream_text
from llmapi.services.metering import Meter
from llmapi.services.response_cache import ResponseCache
from llmapi.services.text_jobs import Generation
from llmapi.services.usage import UsageNote
from tests.text_backend import ScriptedTextBackend

ANSWER = "The capital of France is Paris."
CALLER = Principal(id="k1", kind="api_key", name="t", role="developer", scopes=ROLE_SCOPES["developer"])


def chat(**fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "scripted", "messages": [{"role": "user", "content": "Capital of France?"}], **fields}
    )


def response_cache() -> ResponseCache:
    settings = CacheSettings()
    store = MemoryCacheStore(settings.max_bytes, settings.max_entry_bytes)
    return ResponseCache(settings, store=store, metrics=GatewayMetrics(new_metrics_registry()))


def cached_generation(
    backend: ScriptedTextBackend, cache: ResponseCache, request: ChatCompletionRequest, note: UsageNote
) -> Generation:
    lookup = cache.lookup(CALLER, "chat", request, max_tokens=16)
    return Generation(backend, max_tokens=16, meter=Meter(model="scripted", usage=note, cache=lookup))


async def test_a_chat_completion_is_the_backends_text_with_its_usage() -> None:
    generation = Generation(ScriptedTextBackend(), max_tokens=16)

    completion = await create_chat_completion(request=chat(), generation=generation)

    assert completion.model == "scripted"
    assert [c.message.content for c in completion.choices] == [ANSWER]
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 7)
    note = generation.meter.usage
    assert (note.model, note.prompt_tokens, note.completion_tokens, note.cached) == ("scripted", 4, 7, False)


async def test_n_choices_count_the_prompt_once_per_choice() -> None:
    completion = await create_chat_completion(
        request=chat(n=3), generation=Generation(ScriptedTextBackend(), max_tokens=3)
    )

    assert [c.message.content for c in completion.choices] == ["The capital of"] * 3
    assert {c.finish_reason for c in completion.choices} == {"length"}
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (3 * 4, 9)


async def test_a_chat_stream_opens_each_choice_then_sends_deltas_and_usage() -> None:
    generation = Generation(ScriptedTextBackend(), max_tokens=16)
    request = chat(n=2, stream=True, stream_options={"include_usage": True})

    chunks = [c async for c in stream_chat_completion(request=request, generation=generation)]

    assert [c.choices[0].delta.role for c in chunks[:2]] == ["assistant", "assistant"]
    for index in (0, 1):
        deltas = [ch.delta.content or "" for c in chunks for ch in c.choices if ch.index == index]
        finishes = [ch.finish_reason for c in chunks for ch in c.choices if ch.index == index]
        assert "".join(deltas) == ANSWER
        assert finishes.count("stop") == 1
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (2 * 4, 14)
    assert (generation.meter.usage.prompt_tokens, generation.meter.usage.completion_tokens) == (2 * 4, 14)


async def test_a_cached_answer_serves_whole_and_streamed_requests_without_the_backend() -> None:
    backend, cache = ScriptedTextBackend(), response_cache()
    first_note, second_note, third_note = UsageNote(), UsageNote(), UsageNote()
    request = chat(temperature=0)

    first = await create_chat_completion(
        request=request, generation=cached_generation(backend, cache, request, first_note)
    )
    second = await create_chat_completion(
        request=request, generation=cached_generation(backend, cache, request, second_note)
    )
    streamed_request = chat(temperature=0, stream=True)
    streamed = [
        c
        async for c in stream_chat_completion(
            request=streamed_request,
            generation=cached_generation(backend, cache, streamed_request, third_note),
        )
    ]

    assert len(backend.prompts) == 1
    assert second.choices == first.choices
    assert second.id != first.id
    assert "".join(ch.delta.content or "" for c in streamed for ch in c.choices) == ANSWER
    assert (first_note.cached, second_note.cached, third_note.cached) == (False, True, True)
    assert (second_note.prompt_tokens, second_note.completion_tokens) == (4, 0)


async def test_a_stream_fills_the_cache_only_when_every_choice_finished() -> None:
    backend, cache = ScriptedTextBackend(), response_cache()
    request = chat(temperature=0, stream=True)
    stream = stream_chat_completion(
        request=request, generation=cached_generation(backend, cache, request, UsageNote())
    )
    await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]

    again = await create_chat_completion(
        request=request, generation=cached_generation(backend, cache, request, UsageNote())
    )

    assert [c.message.content for c in again.choices] == [ANSWER]
    assert len(backend.prompts) == 2


async def test_completions_number_choices_per_prompt_and_count_each_prompt_once_per_choice() -> None:
    request = CompletionRequest.model_validate(
        {"model": "scripted", "prompt": ["Paris is", "Rome is"], "n": 2, "max_tokens": 2, "echo": True}
    )

    completion = await create_completion(
        request=request, generation=Generation(ScriptedTextBackend(), max_tokens=2)
    )

    assert [c.text for c in completion.choices] == ["Paris isThe capital"] * 2 + ["Rome isThe capital"] * 2
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (2 * 2 * 3, 8)


async def test_a_completions_stream_echoes_each_prompt_once() -> None:
    request = CompletionRequest.model_validate(
        {"model": "scripted", "prompt": "Paris is", "max_tokens": 2, "echo": True, "stream": True}
    )

    chunks = [
        c
        async for c in stream_completion(
            request=request, generation=Generation(ScriptedTextBackend(), max_tokens=2)
        )
    ]

    assert "".join(ch.text for c in chunks for ch in c.choices) == "Paris isThe capital"


async def test_generate_text_whole_and_streamed_agree() -> None:
    request = GenerateTextRequest.model_validate({"prompt": "Paris", "max_tokens": 5})
    streamed = GenerateTextRequest.model_validate({"prompt": "Paris", "max_tokens": 5, "stream": True})

    whole = await generate_text(request=request, generation=Generation(ScriptedTextBackend(), max_tokens=5))
    chunks = [
        c
        async for c in stream_text(
            request=streamed, generation=Generation(ScriptedTextBackend(), max_tokens=5)
        )
    ]

    assert whole.output == "".join(c.output for c in chunks) == "The capital of France is"
    assert whole.finish_reason == chunks[-1].finish_reason == "length"
    assert chunks[-1].usage == whole.usage


class CountingTextBackend(ScriptedTextBackend):
    """Counts in every piece, as the local engine does: the prompt and the tokens generated so far."""

    async def generate(self, prompt: Prompt, params: SamplingParams) -> AsyncIterator[GenerationChunk]:
        generated = 0
        async for chunk in super().generate(prompt, params):
            generated += 1
            yield GenerationChunk(chunk.text, chunk.finish_reason, 4, generated)


async def test_a_stream_left_early_counts_what_it_got_and_is_marked_cut_short() -> None:
    generation = Generation(CountingTextBackend(), max_tokens=16)
    stream = stream_chat_completion(request=chat(stream=True), generation=generation)
    await anext(stream)  # the role
    await anext(stream)  # the first word
    await stream.aclose()  # type: ignore[attr-defined]

    note = generation.meter.usage
    assert (note.prompt_tokens, note.completion_tokens, note.cut_short) == (4, 1, True)


async def test_a_stream_read_to_its_end_is_not_cut_short() -> None:
    generation = Generation(CountingTextBackend(), max_tokens=16)

    [c async for c in stream_chat_completion(request=chat(stream=True), generation=generation)]

    note = generation.meter.usage
    assert (note.prompt_tokens, note.completion_tokens, note.cut_short) == (4, 7, False)


async def test_a_cached_answer_keeps_its_logprobs_whole_and_streamed() -> None:
    backend, cache = ScriptedTextBackend(), response_cache()
    request = chat(temperature=0, logprobs=True, top_logprobs=2)
    first = await create_chat_completion(
        request=request, generation=cached_generation(backend, cache, request, UsageNote())
    )
    again = await create_chat_completion(
        request=request, generation=cached_generation(backend, cache, request, UsageNote())
    )
    streamed_request = chat(temperature=0, logprobs=True, top_logprobs=2, stream=True)
    streamed = [
        c
        async for c in stream_chat_completion(
            request=streamed_request,
            generation=cached_generation(backend, cache, streamed_request, UsageNote()),
        )
    ]
    assert len(backend.prompts) == 1
    content = first.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content is not None and "".join(t.token for t in content) == ANSWER
    assert [len(t.top_logprobs) for t in content] == [2] * 7
    assert again.choices[0].logprobs == first.choices[0].logprobs
    streamed_content = [
        t for c in streamed for ch in c.choices if ch.logprobs for t in ch.logprobs.content or []
    ]
    assert streamed_content == content
    plain = await create_chat_completion(
        request=chat(temperature=0),
        generation=cached_generation(backend, cache, chat(temperature=0), UsageNote()),
    )
    assert plain.choices[0].logprobs is None  # a request without logprobs has its own cache entry
    assert len(backend.prompts) == 2


async def test_completions_logprobs_line_up_with_the_text_whole_and_streamed() -> None:
    backend = ScriptedTextBackend()
    request = CompletionRequest(model="scripted", prompt="Q", max_tokens=16, logprobs=1, temperature=0)
    whole = await create_completion(request=request, generation=Generation(backend, max_tokens=16))
    logprobs = whole.choices[0].logprobs
    assert logprobs is not None and logprobs.tokens is not None and logprobs.text_offset is not None
    assert [
        whole.choices[0].text[o : o + len(t)]
        for t, o in zip(logprobs.tokens, logprobs.text_offset, strict=True)
    ] == logprobs.tokens
    streamed_request = request.model_copy(update={"stream": True})
    chunks = [
        c
        async for c in stream_completion(
            request=streamed_request, generation=Generation(backend, max_tokens=16)
        )
    ]
    assert [t for c in chunks for t in (c.choices[0].logprobs.tokens or [])] == logprobs.tokens  # type: ignore[union-attr]
