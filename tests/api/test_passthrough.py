"""Models on an `openai` backend get the client's request as sent and give back the upstream's answer:
tools, tool calls, structured output, logprobs, content parts and unknown fields go through unchanged, with
auth, limits, cache and usage on the way. The upstream is a real server on loopback that records what it got.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.api.inprocess import InProcess, in_process
from tests.recording_upstream import EXTENSION, RecordingUpstream, recording_upstream
from tests.servers import ADMIN_HEADERS, ADMIN_KEY

from llmapi.backends.remote.openai_compat import OpenAICompatBackend
from llmapi.model_specs import ModelSpec
from llmapi.serialization.proto import llmapi_pb2

SECRET = "sk-upstream-0a1b2c3d4e"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": True,
    },
}


def _backend(model: str, task: str, upstream: RecordingUpstream, **more: object) -> OpenAICompatBackend:
    options = {"base_url": upstream.url, "api_key": SECRET, "upstream_model": f"up-{model}", **more}
    return OpenAICompatBackend(ModelSpec(id=model, task=task, backend="openai", options=options))


@pytest.fixture
async def upstream() -> AsyncIterator[RecordingUpstream]:
    async with recording_upstream() as running:
        yield running


@pytest.fixture
async def stack(tmp_path: Path, upstream: RecordingUpstream) -> AsyncIterator[InProcess]:
    async with in_process(
        tmp_path,
        _backend("remote-chat", "text-generation", upstream),
        _backend("remote-embed", "embedding", upstream),
        _backend("remote-responses", "text-generation", upstream, responses_api=True),
    ) as running:
        yield running


@pytest.fixture
def sdk(stack: InProcess) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url="http://llmapi.test/v1", api_key=ADMIN_KEY, http_client=stack.client, max_retries=0
    )


async def test_every_field_reaches_the_upstream_as_sent(
    stack: InProcess, upstream: RecordingUpstream
) -> None:
    body: dict[str, Any] = {
        "model": "remote-chat",
        "messages": [
            {"role": "system", "content": "Use the tools."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture, and the weather there?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_9",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_9", "content": '{"temp": -3}'},
        ],
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "object"}},
        },
        "logprobs": True,
        "top_logprobs": 2,
        "logit_bias": {"50256": -100},
        "user": "end-user-7",
        "metadata": {"trace": "abc"},
        "reasoning_effort": "low",
        "guided_grammar": "root ::= 'x'",
    }
    response = await stack.client.post("/v1/chat/completions", json=body, headers=ADMIN_HEADERS)

    assert response.status_code == 200, response.text
    assert upstream.last.path == "/v1/chat/completions"
    assert upstream.last.body == {**body, "model": "up-remote-chat"}
    assert upstream.last.headers["Authorization"] == f"Bearer {SECRET}"


async def test_nothing_is_added_to_a_request_that_sets_nothing(
    stack: InProcess, upstream: RecordingUpstream
) -> None:
    body = {"model": "remote-chat", "messages": [{"role": "user", "content": "hi"}]}
    response = await stack.client.post("/v1/chat/completions", json=body, headers=ADMIN_HEADERS)

    assert response.status_code == 200
    assert upstream.last.body == {
        "model": "up-remote-chat",
        "messages": body["messages"],
    }  # no sampling defaults


async def test_the_answer_comes_back_as_the_upstream_sent_it(stack: InProcess) -> None:
    body = {"model": "remote-chat", "messages": [{"role": "user", "content": "hi"}], "logprobs": True}
    answer = (await stack.client.post("/v1/chat/completions", json=body, headers=ADMIN_HEADERS)).json()

    assert answer["model"] == "remote-chat"
    assert answer["vendor_extension"] == EXTENSION["vendor_extension"]
    assert answer["system_fingerprint"] == "fp_recording"
    assert answer["choices"][0]["logprobs"]["content"][0]["logprob"] == -0.25


async def test_tool_calls_come_back_intact(sdk: openai.AsyncOpenAI) -> None:
    completion = await sdk.chat.completions.create(
        model="remote-chat",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    [call] = completion.choices[0].message.tool_calls or []
    assert completion.choices[0].finish_reason == "tool_calls"
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
        "call_0",
        "get_weather",
        {"city": "Paris"},
    )


async def test_streamed_tool_calls_come_back_intact(
    sdk: openai.AsyncOpenAI, upstream: RecordingUpstream
) -> None:
    stream = await sdk.chat.completions.create(
        model="remote-chat",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        stream=True,
    )
    chunks = [chunk async for chunk in stream]
    calls = [call for chunk in chunks for choice in chunk.choices for call in choice.delta.tool_calls or []]

    assert calls[0].id == "call_0" and calls[0].function and calls[0].function.name == "get_weather"
    assert json.loads("".join(c.function.arguments or "" for c in calls if c.function)) == {"city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert {chunk.model for chunk in chunks} == {"remote-chat"}
    # usage was asked of the upstream for metering, and its chunk kept from a client that did not ask
    assert upstream.last.body["stream_options"] == {"include_usage": True}
    assert all(chunk.usage is None for chunk in chunks) and all(chunk.choices for chunk in chunks)


async def test_a_stream_with_usage_asked_for_ends_with_the_upstreams_usage(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="remote-chat",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "The answer is 42."
    assert chunks[-1].choices == [] and chunks[-1].usage and chunks[-1].usage.completion_tokens == 5


async def test_structured_output_and_logprobs(sdk: openai.AsyncOpenAI) -> None:
    completion = await sdk.chat.completions.create(
        model="remote-chat",
        messages=[{"role": "user", "content": "Answer in JSON."}],
        response_format={"type": "json_object"},
        logprobs=True,
        top_logprobs=1,
    )
    choice = completion.choices[0]
    assert json.loads(choice.message.content or "") == {"answer": 42}
    assert choice.logprobs and choice.logprobs.content and choice.logprobs.content[0].top_logprobs


async def test_a_non_streamed_request_is_not_streamed_upstream(
    stack: InProcess, upstream: RecordingUpstream
) -> None:
    body = {"model": "remote-chat", "prompt": "Once", "max_tokens": 3}
    response = await stack.client.post("/v1/completions", json=body, headers=ADMIN_HEADERS)

    assert response.json()["choices"][0]["text"] == "The answer is 42."
    assert upstream.last.path == "/v1/completions"
    assert upstream.last.body == {**body, "model": "up-remote-chat"}


async def test_embeddings_forward_dimensions_and_encoding(
    sdk: openai.AsyncOpenAI, upstream: RecordingUpstream
) -> None:
    result = await sdk.embeddings.create(model="remote-embed", input=["a", "b"], dimensions=8)

    assert upstream.last.body["dimensions"] == 8
    assert upstream.last.body["encoding_format"] == "base64"  # the SDK asks for base64 and decodes it
    assert [len(item.embedding) for item in result.data] == [8, 8]
    assert result.model == "remote-embed"


async def test_upstream_errors_keep_their_status_and_body_without_the_secret(
    stack: InProcess, upstream: RecordingUpstream
) -> None:
    upstream.fail = 400
    upstream.name = f"key {SECRET} is"
    body = {"model": "remote-chat", "messages": [{"role": "user", "content": "hi"}]}
    response = await stack.client.post("/v1/chat/completions", json=body, headers=ADMIN_HEADERS)

    assert response.status_code == 400
    assert SECRET not in response.text
    assert "fails on purpose" in response.json()["error"]["message"]


async def test_usage_is_the_upstreams_and_limits_apply(stack: InProcess, upstream: RecordingUpstream) -> None:
    headers = await stack.new_key(role="developer", rate_limits={"requests_per_minute": 2})
    body = {"model": "remote-chat", "messages": [{"role": "user", "content": "hi"}]}
    first = await stack.client.post("/v1/chat/completions", json=body, headers=headers)
    await stack.client.post("/v1/chat/completions", json=body, headers=headers)
    third = await stack.client.post("/v1/chat/completions", json=body, headers=headers)

    assert third.status_code == 429 and len(upstream.requests) == 2
    await stack.app.state.identity.usage.flush()
    rows = (await stack.client.get("/v1/usage", headers=headers)).json()["data"]
    [row] = [row for row in rows if row["model"] == "remote-chat"]  # the refused one names no model
    assert row["requests"] == 3 - 1
    assert row["completion_tokens"] == 2 * first.json()["usage"]["completion_tokens"]
    assert row["prompt_tokens"] == 2 * first.json()["usage"]["prompt_tokens"]


async def test_deterministic_answers_are_cached_with_every_field_in_the_key(
    stack: InProcess, upstream: RecordingUpstream
) -> None:
    body = {"model": "remote-chat", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    first = await stack.client.post("/v1/chat/completions", json=body, headers=ADMIN_HEADERS)
    again = await stack.client.post("/v1/chat/completions", json=body, headers=ADMIN_HEADERS)
    other = await stack.client.post(
        "/v1/chat/completions", json={**body, "guided_choice": ["a"]}, headers=ADMIN_HEADERS
    )

    assert (first.headers["x-cache"], again.headers["x-cache"], other.headers["x-cache"]) == (
        "MISS",
        "HIT",
        "MISS",
    )
    assert again.content == first.content
    assert len(upstream.requests) == 2


async def test_xml_and_protobuf_clients_get_the_tool_calls(stack: InProcess) -> None:
    body = {"model": "remote-chat", "messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER_TOOL]}
    as_xml = await stack.client.post(
        "/v1/chat/completions", json=body, headers={**ADMIN_HEADERS, "Accept": "application/xml"}
    )
    as_protobuf = await stack.client.post(
        "/v1/chat/completions", json=body, headers={**ADMIN_HEADERS, "Accept": "application/x-protobuf"}
    )

    assert as_xml.status_code == 200 and b"get_weather" in as_xml.content
    completion = llmapi_pb2.ChatCompletion.FromString(as_protobuf.content)
    call = completion.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name, call.function.arguments) == (
        "call_0",
        "get_weather",
        '{"city": "Paris"}',
    )
    assert completion.choices[0].finish_reason == "tool_calls"


async def test_the_answer_says_which_model_answered_and_what_the_gateway_added(
    stack: InProcess, upstream: RecordingUpstream
) -> None:
    upstream.delay_s = 0.3
    body = {"model": "remote-chat", "messages": [{"role": "user", "content": "hi"}]}
    response = await stack.client.post("/v1/chat/completions", json=body, headers=ADMIN_HEADERS)

    assert response.headers["x-llmapi-model"] == "remote-chat"
    overhead_ms = float(response.headers["x-llmapi-overhead-ms"])
    assert 0 < overhead_ms < 300  # the upstream's 300 ms are not the gateway's
    metrics = (await stack.client.get("/metrics")).text
    assert "llmapi_gateway_overhead_seconds_count" in metrics


async def test_an_upstream_with_the_responses_api_gets_responses_as_sent(
    sdk: openai.AsyncOpenAI, upstream: RecordingUpstream
) -> None:
    response = await sdk.responses.create(
        model="remote-responses",
        input=[{"type": "reasoning", "id": "rs_1", "summary": []}, {"role": "user", "content": "hi"}],
        tools=[{"type": "web_search"}],
        previous_response_id="resp_the_upstream_keeps",
    )

    assert upstream.last.path == "/v1/responses"
    assert upstream.last.body["previous_response_id"] == "resp_the_upstream_keeps"
    assert upstream.last.body["tools"] == [{"type": "web_search"}]
    assert "stream_options" not in upstream.last.body
    assert (response.id, response.model, response.output_text) == (
        "resp_up",
        "remote-responses",
        "The answer is 42.",
    )


async def test_a_passed_through_responses_stream_keeps_its_events(
    stack: InProcess, sdk: openai.AsyncOpenAI, upstream: RecordingUpstream
) -> None:
    stream = await sdk.responses.create(model="remote-responses", input="hi", stream=True)
    events = [event async for event in stream]

    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    assert events[-1].response.model == "remote-responses"  # type: ignore[union-attr]
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "The answer is 42."
    assert "stream_options" not in upstream.last.body
    headers = {**ADMIN_HEADERS, "Accept": "text/event-stream"}
    raw = await stack.client.post(
        "/v1/responses", json={"model": "remote-responses", "input": "hi", "stream": True}, headers=headers
    )
    assert raw.text.startswith("event: response.created\ndata: ") and "[DONE]" not in raw.text
