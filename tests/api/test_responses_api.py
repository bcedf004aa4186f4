"""POST /v1/responses, GET and DELETE /v1/responses/{id} with the official openai SDK against the app in
process: the default local chat model (random weights: meaningless text, real tokens), a scripted model that
shows the prompt it got, and two stand-ins for remote models (a chat upstream that calls tools, an upstream
with the Responses API of its own)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx2
import openai
import orjson
import pytest
from openai.types.responses import Response
from tests.api.inprocess import InProcess, in_process
from tests.conftest import OpenAISchemas
from tests.servers import ADMIN_HEADERS, ADMIN_KEY
from tests.text_backend import WORDS, ScriptedTextBackend

from llmapi.backends.base import ChatPrompt, Counts, ForwardedAnswer, ModelCard, StreamTally
from llmapi.backends.registry import build_backend
from llmapi.config import Settings
from llmapi.model_specs import RANDOM_TEXT_MODEL, random_text_model

SCHEMAS = Path(__file__).parent.parent / "data" / "openai-responses.json"
GPT2 = RANDOM_TEXT_MODEL
SCRIPTED = "scripted"
TOOLS_UPSTREAM = "remote-with-tools"
RESPONSES_UPSTREAM = "remote-responses-api"
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


class ChatUpstream:
    """A remote chat model as the gateway passes requests through to it: it calls the first tool it is given,
    and answers in text once it has read a tool's result."""

    responses_api = False

    def __init__(self) -> None:
        self.card = ModelCard(id=TOOLS_UPSTREAM, task="text-generation", owned_by="tests", created=0)
        self.documents: list[dict[str, Any]] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def forward(self, path: str, document: Mapping[str, Any]) -> ForwardedAnswer:
        assert path == "chat/completions"
        self.documents.append(dict(document))
        message, finish = self._answer(document)
        body = {
            "id": "chatcmpl-upstream",
            "object": "chat.completion",
            "created": 0,
            "model": document["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39},
        }
        return ForwardedAnswer(orjson.dumps(body), Counts(30, 9))

    async def forward_stream(
        self, path: str, document: Mapping[str, Any], tally: StreamTally
    ) -> AsyncGenerator[list[bytes], None]:
        self.documents.append(dict(document))
        message, finish = self._answer(document)

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            return orjson.dumps(
                {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "m",
                    "choices": [choice],
                }
            )

        yield [chunk({"role": "assistant", "content": ""})]
        for call in message.get("tool_calls") or []:
            name, arguments = call["function"]["name"], call["function"]["arguments"]
            first = {
                "index": 0,
                "id": call["id"],
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            yield [chunk({"tool_calls": [first]})]
            for piece in (arguments[:5], arguments[5:]):
                yield [chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})]
        for word in (message.get("content") or "").split():
            yield [chunk({"content": word + " "})]
        yield [chunk({}, finish)]
        tally.counts = Counts(30, 9)
        usage = {"prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39}
        yield [
            orjson.dumps(
                {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "m",
                    "choices": [],
                    "usage": usage,
                }
            )
        ]

    @staticmethod
    def _answer(document: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        last = document["messages"][-1]
        if last["role"] == "tool":
            return {"role": "assistant", "content": f"It is {last['content']} there."}, "stop"
        tool = document["tools"][0]["function"]["name"]
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": tool, "arguments": '{"city": "Paris"}'},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"


class ResponsesUpstream(ChatUpstream):
    """A remote model whose upstream has the Responses API itself."""

    responses_api = True

    def __init__(self) -> None:
        super().__init__()
        self.card = ModelCard(id=RESPONSES_UPSTREAM, task="text-generation", owned_by="tests", created=0)

    async def forward(self, path: str, document: Mapping[str, Any]) -> ForwardedAnswer:
        self.documents.append({"path": path, **document})
        body = {
            "id": "resp_from_upstream",
            "object": "response",
            "created_at": 0,
            "status": "completed",
            "model": document["model"],
            "output": [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": document.get("tools", []),
            "usage": {"input_tokens": 5, "output_tokens": 0, "total_tokens": 5},
        }
        return ForwardedAnswer(orjson.dumps(body), Counts(5, 0))


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[InProcess]:
    settings = Settings()
    gpt2 = build_backend(random_text_model(), settings)
    backends = (gpt2, ScriptedTextBackend(SCRIPTED), ChatUpstream(), ResponsesUpstream())
    async with in_process(tmp_path_factory.mktemp("responses"), *backends) as running:
        yield running


def sdk(stack: InProcess, api_key: str = ADMIN_KEY) -> openai.AsyncOpenAI:
    transport = httpx2.ASGITransport(app=stack.app)
    http = httpx2.AsyncClient(transport=transport, base_url="http://llmapi.test/v1")
    return openai.AsyncOpenAI(
        base_url="http://llmapi.test/v1", api_key=api_key, http_client=http, max_retries=0
    )


@pytest.fixture(scope="module")
def client(stack: InProcess) -> openai.AsyncOpenAI:
    return sdk(stack)


@pytest.fixture(scope="module")
def schemas() -> OpenAISchemas:
    return OpenAISchemas(json.loads(SCHEMAS.read_text()))


def backend(stack: InProcess, model: str) -> Any:
    return stack.app.state.registry._lookup(model)


def prompt_of(stack: InProcess) -> list[tuple[str, str]]:
    """The messages of the last prompt the scripted model got."""
    prompt = backend(stack, SCRIPTED).prompts[-1]
    assert isinstance(prompt, ChatPrompt)
    return [(m.role, m.content) for m in prompt.messages]


async def test_text_input(client: openai.AsyncOpenAI, schemas: OpenAISchemas) -> None:
    response = await client.responses.create(model=GPT2, input="Say hello", max_output_tokens=12)
    schemas.validate("Response", response.model_dump(mode="json", exclude_unset=True))
    assert response.id.startswith("resp_")
    assert response.object == "response"
    assert response.model == GPT2
    assert abs(response.created_at - time.time()) < 60
    message = response.output[0]
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.id.startswith("msg_")
    assert message.content[0].type == "output_text"
    assert response.output_text == message.content[0].text
    usage = response.usage
    assert usage is not None
    assert usage.input_tokens > 0
    assert 0 < usage.output_tokens <= 12
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert (response.temperature, response.top_p, response.tool_choice, response.tools) == (
        1.0,
        1.0,
        "auto",
        [],
    )
    assert response.parallel_tool_calls is True
    assert response.store is True


async def test_message_input_with_instructions(stack: InProcess, client: openai.AsyncOpenAI) -> None:
    response = await client.responses.create(
        model=SCRIPTED,
        instructions="Answer in French.",
        input=[
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is "},
                    {"type": "input_text", "text": "the capital?"},
                ],
            },
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Of what?", "annotations": []}],
            },
            {"role": "user", "content": "Of France."},
        ],
        metadata={"ticket": "42"},
    )
    assert prompt_of(stack) == [
        ("system", "Answer in French."),
        ("developer", "Be brief."),
        ("user", "What is the capital?"),
        ("assistant", "Of what?"),
        ("user", "Of France."),
    ]
    assert response.output_text == "".join(WORDS)
    assert response.status == "completed"
    assert response.instructions == "Answer in French."
    assert response.metadata == {"ticket": "42"}


async def test_stream_sends_the_events_in_order(
    stack: InProcess, client: openai.AsyncOpenAI, schemas: OpenAISchemas
) -> None:
    stream = await client.responses.create(model=SCRIPTED, input="Capital of France?", stream=True)
    events = [event async for event in stream]
    for event in events:
        schemas.validate(_EVENT_SCHEMAS[event.type], event.model_dump(mode="json", exclude_unset=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * len(WORDS),
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[0].response.status == "in_progress"
    completed = events[-1].response
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == completed.output_text == "".join(WORDS)
    assert events[-2].item == completed.output[0]
    assert completed.usage is not None
    assert completed.usage.output_tokens == len(WORDS)


async def test_stream_of_the_local_model(client: openai.AsyncOpenAI) -> None:
    stream = await client.responses.create(
        model=GPT2, input="Count with me: one", max_output_tokens=10, stream=True
    )
    events = [event async for event in stream]
    final = events[-1]
    assert final.type in {"response.completed", "response.incomplete"}
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == final.response.output_text
    assert final.response.usage.output_tokens <= 10


async def test_max_output_tokens_is_respected(client: openai.AsyncOpenAI) -> None:
    response = await client.responses.create(model=GPT2, input="Tell me a long story", max_output_tokens=5)
    assert response.usage is not None
    assert response.usage.output_tokens <= 5
    assert response.max_output_tokens == 5
    if response.usage.output_tokens == 5:
        assert response.status == "incomplete"
        assert response.incomplete_details is not None
        assert response.incomplete_details.reason == "max_output_tokens"
        assert response.output[0].status == "incomplete"


async def test_store_get_and_delete(stack: InProcess, client: openai.AsyncOpenAI) -> None:
    created = await client.responses.create(model=GPT2, input="Remember me", max_output_tokens=4)
    retrieved = await client.responses.retrieve(created.id)
    assert retrieved.model_dump() == created.model_dump()

    deleted = await stack.client.delete(f"/v1/responses/{created.id}", headers=ADMIN_HEADERS)
    assert deleted.status_code == 200
    assert deleted.json() == {"id": created.id, "object": "response", "deleted": True}
    with pytest.raises(openai.NotFoundError) as caught:
        await client.responses.retrieve(created.id)
    assert caught.value.body["param"] == "response_id"
    with pytest.raises(openai.NotFoundError):
        await client.responses.delete(created.id)


async def test_previous_response_id_continues_the_conversation(client: openai.AsyncOpenAI) -> None:
    first = await client.responses.create(
        model=GPT2, input="My name is Ada.", max_output_tokens=6, temperature=0
    )
    second = await client.responses.create(
        model=GPT2,
        input="What is my name?",
        previous_response_id=first.id,
        max_output_tokens=6,
        temperature=0,
    )
    alone = await client.responses.create(
        model=GPT2, input="What is my name?", max_output_tokens=6, temperature=0
    )
    assert first.usage is not None and second.usage is not None and alone.usage is not None
    assert second.previous_response_id == first.id
    assert (
        second.usage.input_tokens
        >= alone.usage.input_tokens + first.usage.input_tokens + first.usage.output_tokens - 2
    )


async def test_a_continuation_reads_the_exchange_but_not_its_instructions(
    stack: InProcess, client: openai.AsyncOpenAI
) -> None:
    first = await client.responses.create(model=SCRIPTED, instructions="Be terse.", input="Hi")
    second = await client.responses.create(model=SCRIPTED, previous_response_id=first.id, input="And?")
    third = await client.responses.create(
        model=SCRIPTED, previous_response_id=second.id, input="Go on", instructions="Now be verbose."
    )
    answer = "".join(WORDS)
    assert first.output_text == second.output_text == third.output_text == answer
    assert prompt_of(stack) == [
        ("system", "Now be verbose."),
        ("user", "Hi"),
        ("assistant", answer),
        ("user", "And?"),
        ("assistant", answer),
        ("user", "Go on"),
    ]


async def test_store_false_keeps_nothing(client: openai.AsyncOpenAI) -> None:
    response = await client.responses.create(model=SCRIPTED, input="Forget me", store=False)
    assert response.store is False
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError) as caught:
        await client.responses.create(model=SCRIPTED, input="x", previous_response_id=response.id)
    assert caught.value.body["param"] == "previous_response_id"


async def test_another_principal_sees_no_stored_response(
    stack: InProcess, client: openai.AsyncOpenAI
) -> None:
    mine = await client.responses.create(model=SCRIPTED, input="Mine")
    other = sdk(stack, (await stack.new_key(role="developer"))["Authorization"].removeprefix("Bearer "))
    with pytest.raises(openai.NotFoundError):
        await other.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        await other.responses.delete(mine.id)
    with pytest.raises(openai.NotFoundError):
        await other.responses.create(model=SCRIPTED, input="x", previous_response_id=mine.id)
    assert (await client.responses.retrieve(mine.id)).id == mine.id


async def test_a_streamed_response_is_stored_when_complete(client: openai.AsyncOpenAI) -> None:
    stream = await client.responses.create(model=SCRIPTED, input="Stream and keep", stream=True)
    events = [event async for event in stream]
    completed = events[-1].response
    assert (await client.responses.retrieve(completed.id)).model_dump() == completed.model_dump()


async def test_the_chat_scope_is_needed(stack: InProcess) -> None:
    key = (await stack.new_key(scopes=["embeddings"]))["Authorization"].removeprefix("Bearer ")
    with pytest.raises(openai.PermissionDeniedError):
        await sdk(stack, key).responses.create(model=SCRIPTED, input="x")


async def test_a_tool_loop_through_a_remote_chat_model(stack: InProcess, client: openai.AsyncOpenAI) -> None:
    upstream: ChatUpstream = backend(stack, TOOLS_UPSTREAM)
    called = await client.responses.create(
        model=TOOLS_UPSTREAM,
        input="Weather in Paris?",
        tools=[WEATHER_TOOL],
        tool_choice="auto",
    )
    sent = upstream.documents[-1]
    assert sent["tools"] == [
        {"type": "function", "function": {key: value for key, value in WEATHER_TOOL.items() if key != "type"}}
    ]
    assert sent["tool_choice"] == "auto"
    call = called.output[0]
    assert call.type == "function_call"
    assert (call.call_id, call.name, call.arguments) == ("call_1", "get_weather", '{"city": "Paris"}')
    assert called.tools[0].name == "get_weather"
    assert called.usage is not None and (called.usage.input_tokens, called.usage.output_tokens) == (30, 9)

    answered = await client.responses.create(
        model=TOOLS_UPSTREAM,
        previous_response_id=called.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        tools=[WEATHER_TOOL],
    )
    assert upstream.documents[-1]["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    assert answered.output_text == "It is sunny there."


async def test_a_manual_tool_loop_sends_the_calls_back(stack: InProcess, client: openai.AsyncOpenAI) -> None:
    upstream: ChatUpstream = backend(stack, TOOLS_UPSTREAM)
    called = await client.responses.create(
        model=TOOLS_UPSTREAM, input="Weather?", tools=[WEATHER_TOOL], store=False
    )
    call = called.output[0]
    assert call.type == "function_call"
    await client.responses.create(
        model=TOOLS_UPSTREAM,
        input=[
            {"role": "user", "content": "Weather?"},
            call.model_dump(exclude_none=True),
            {"type": "function_call_output", "call_id": call.call_id, "output": "rainy"},
        ],
        tools=[WEATHER_TOOL],
    )
    messages = upstream.documents[-1]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["tool_calls"][0]["id"] == call.call_id


async def test_a_streamed_function_call(
    stack: InProcess, client: openai.AsyncOpenAI, schemas: OpenAISchemas
) -> None:
    stream = await client.responses.create(
        model=TOOLS_UPSTREAM, input="Weather?", tools=[WEATHER_TOOL], stream=True
    )
    events = [event async for event in stream]
    for event in events:
        schemas.validate(_EVENT_SCHEMAS[event.type], event.model_dump(mode="json", exclude_unset=True))
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert backend(stack, TOOLS_UPSTREAM).documents[-1]["stream_options"] == {"include_usage": True}
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    done = events[-3]
    assert deltas == done.arguments == '{"city": "Paris"}'
    call = events[-1].response.output[0]
    assert (call.type, call.call_id, call.name, call.arguments) == (
        "function_call",
        "call_1",
        "get_weather",
        deltas,
    )


async def test_an_upstream_with_the_responses_api_gets_the_request_as_sent(
    stack: InProcess, client: openai.AsyncOpenAI
) -> None:
    hosted = [{"type": "web_search"}]
    response = await client.responses.create(
        model=RESPONSES_UPSTREAM,
        input=[{"type": "reasoning", "id": "rs_1", "summary": []}, {"role": "user", "content": "hi"}],
        tools=hosted,
        previous_response_id="resp_only_the_upstream_knows",
    )
    sent = backend(stack, RESPONSES_UPSTREAM).documents[-1]
    assert sent["path"] == "responses"
    assert sent["tools"] == hosted
    assert sent["previous_response_id"] == "resp_only_the_upstream_knows"
    assert sent["input"][0]["type"] == "reasoning"
    assert response.id == "resp_from_upstream"
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(response.id)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools.0.type"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input.0.type"),
        ({"tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": []}}, "tool_choice"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]},
            "input.0.content.0.type",
        ),
    ],
)
async def test_what_chat_cannot_say_is_refused(
    client: openai.AsyncOpenAI, fields: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model=TOOLS_UPSTREAM, **{"input": "x", **fields})
    assert caught.value.body["param"] == param
    assert caught.value.code == "unsupported_parameter"


async def test_what_a_local_model_cannot_do_is_refused(client: openai.AsyncOpenAI) -> None:
    image = {"type": "input_image", "image_url": "https://example.com/cat.png"}
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model=GPT2, input=[{"role": "user", "content": [image]}])
    assert "non-text content" in caught.value.message


async def test_errors_before_the_stream_keep_their_status(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        await client.responses.create(model="no-such-model", input="x", stream=True)
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model=GPT2, input="word " * 3000, stream=True)
    assert caught.value.code == "context_length_exceeded"


async def test_xml_in_and_out_and_no_protobuf(stack: InProcess) -> None:
    body = "<request><model>scripted</model><input>Hi</input><store>false</store></request>"
    headers = {**ADMIN_HEADERS, "content-type": "application/xml", "accept": "application/xml"}
    answered = await stack.client.post("/v1/responses", content=body, headers=headers)
    assert answered.status_code == 200, answered.text
    assert answered.headers["content-type"].startswith("application/xml")
    assert "<object>response</object>" in answered.text
    refused = await stack.client.post(
        "/v1/responses",
        json={"model": SCRIPTED, "input": "Hi"},
        headers={**ADMIN_HEADERS, "accept": "application/x-protobuf"},
    )
    assert refused.status_code == 406


async def test_a_bad_request_is_a_400_in_the_openai_shape(stack: InProcess) -> None:
    for body in (
        {"model": SCRIPTED},
        {"model": SCRIPTED, "input": []},
        {"model": SCRIPTED, "input": "x", "max_output_tokens": 0},
    ):
        answered = await stack.client.post("/v1/responses", json=body, headers=ADMIN_HEADERS)
        assert answered.status_code == 400, answered.text
        assert answered.json()["error"]["type"] == "invalid_request_error"


def test_the_response_parses_as_the_sdk_s_own_model() -> None:
    """Every field the SDK's Response requires is there (it builds responses without validating them)."""
    from llmapi.protocol.responses import ModelResponse, OutputMessage, OutputText

    ours = ModelResponse(
        id="resp_1",
        created_at=0,
        status="completed",
        model="m",
        output=[OutputMessage(id="msg_1", status="completed", content=[OutputText(text="hi")])],
    )
    parsed = Response.model_validate(ours.model_dump(mode="json"))
    assert parsed.output_text == "hi"


_EVENT_SCHEMAS = {
    "response.created": "ResponseCreatedEvent",
    "response.in_progress": "ResponseInProgressEvent",
    "response.output_item.added": "ResponseOutputItemAddedEvent",
    "response.output_item.done": "ResponseOutputItemDoneEvent",
    "response.content_part.added": "ResponseContentPartAddedEvent",
    "response.content_part.done": "ResponseContentPartDoneEvent",
    "response.output_text.delta": "ResponseTextDeltaEvent",
    "response.output_text.done": "ResponseTextDoneEvent",
    "response.function_call_arguments.delta": "ResponseFunctionCallArgumentsDeltaEvent",
    "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneEvent",
    "response.completed": "ResponseCompletedEvent",
    "response.incomplete": "ResponseIncompleteEvent",
    "error": "ResponseErrorEvent",
}
