"""Chat completions with tools, above the engine: a backend that answers with a given text, a few
characters a piece, as a model streams."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from llmapi.backends.base import ChatPrompt, GenerationChunk, ModelCard, Prompt
from llmapi.engine.sampling_params import SamplingParams
from llmapi.protocol.chat import ChatCompletionRequest
from llmapi.services.chat import create_chat_completion, stream_chat_completion
from llmapi.services.metering import Meter
from llmapi.services.text_jobs import Generation
from llmapi.services.usage import UsageNote

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


class AnsweringBackend:
    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.prompts: list[Prompt] = []
        self.card = ModelCard(id="m", task="text-generation", owned_by="tests", created=int(time.time()))

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def generate(self, prompt: Prompt, params: SamplingParams) -> AsyncIterator[GenerationChunk]:
        self.prompts.append(prompt)
        pieces = [self.answer[at : at + 5] for at in range(0, len(self.answer), 5)]
        for i, piece in enumerate(pieces, start=1):
            done = i == len(pieces)
            yield GenerationChunk(piece, "stop" if done else None, 7 if done else 0, i if done else 0)


def chat(**fields: Any) -> ChatCompletionRequest:
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    return ChatCompletionRequest.model_validate({"model": "m", "messages": messages, **fields})


def generation(backend: AnsweringBackend) -> Generation:
    return Generation(backend, max_tokens=64, meter=Meter(model="m", usage=UsageNote()))


async def test_a_call_in_the_answer_is_a_tool_call_with_finish_reason_tool_calls() -> None:
    backend = AnsweringBackend(CALL)
    completion = await create_chat_completion(request=chat(tools=[WEATHER]), generation=generation(backend))
    [choice] = completion.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    prompt = backend.prompts[0]
    assert isinstance(prompt, ChatPrompt) and [t.name for t in prompt.tools] == ["get_weather"]


async def test_with_tool_choice_none_the_prompt_offers_no_tools_and_the_answer_is_text() -> None:
    backend = AnsweringBackend(CALL)
    request = chat(tools=[WEATHER], tool_choice="none")
    completion = await create_chat_completion(request=request, generation=generation(backend))
    assert completion.choices[0].message.content == CALL
    assert completion.choices[0].finish_reason == "stop"
    assert isinstance(backend.prompts[0], ChatPrompt) and backend.prompts[0].tools == ()


async def test_the_history_carries_calls_and_results_to_the_backend() -> None:
    backend = AnsweringBackend("It is 21 degrees.")
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "21"},
    ]
    request = chat(tools=[WEATHER], messages=messages)
    completion = await create_chat_completion(request=request, generation=generation(backend))
    assert completion.choices[0].message.content == "It is 21 degrees."
    assert completion.choices[0].finish_reason == "stop"
    prompt = backend.prompts[0]
    assert isinstance(prompt, ChatPrompt)
    assert prompt.messages[1].tool_calls[0].name == "get_weather"
    assert prompt.messages[2].tool_call_id == "call_1" and prompt.messages[2].content == "21"


async def test_a_streamed_call_comes_as_openai_streams_tool_call_deltas() -> None:
    backend = AnsweringBackend("Checking. " + CALL)
    request = chat(tools=[WEATHER], stream=True)
    chunks = [c async for c in stream_chat_completion(request=request, generation=generation(backend))]
    deltas = [c.choices[0].delta for c in chunks]
    assert deltas[0].role == "assistant"
    assert "".join(d.content or "" for d in deltas) == "Checking."
    calls = [call for d in deltas for call in d.tool_calls or []]
    head, *rest = calls
    assert head.index == 0 and head.id and head.id.startswith("call_") and head.type == "function"
    assert head.function is not None and head.function.name == "get_weather" and head.function.arguments == ""
    arguments = "".join(c.function.arguments or "" for c in rest if c.function)
    assert all(c.index == 0 and c.id is None for c in rest)
    assert json.loads(arguments) == {"city": "Paris"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason] == ["tool_calls"]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
