"""OpenAICompatBackend against a small in-test upstream that speaks OpenAI's HTTP and SSE formats."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from llmapi.backends.base import ChatMessage, ChatPrompt, GenerationChunk, Prompt, TextPrompt
from llmapi.backends.remote.openai_compat import OpenAICompatBackend
from llmapi.config import ConfigError
from llmapi.engine.sampling_params import SamplingParams
from llmapi.errors import (
    APIError,
    ContextLengthExceededError,
    InvalidRequestError,
    ServerOverloadedError,
    ServiceUnavailableError,
    UpstreamError,
    UpstreamTimeoutError,
    WrongTaskError,
)
from llmapi.model_specs import ModelSpec

SECRET = "sk-test-5f1e9c0d2b7a"
PIECES = ["Hel", "lo", ", wö", "rld", " ✓"]
CHAT = ChatPrompt(messages=(ChatMessage("system", "Be brief."), ChatMessage("user", "Hi")))


def sse(event: object) -> bytes:
    data = event if isinstance(event, str) else json.dumps(event, ensure_ascii=False)
    return f"data: {data}\n\n".encode()


def error_body(message: str, code: str | int | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


ERRORS: dict[str, tuple[int, dict[str, Any] | str, dict[str, str]]] = {
    "status-400": (400, error_body("temperature is too high", "invalid_value", "temperature"), {}),
    "status-400-context": (400, error_body("Prompt too long.", "context_length_exceeded", "messages"), {}),
    "status-400-vllm": (
        400,
        {"object": "error", "message": "This model's maximum context length is 2048 tokens.", "code": 400},
        {},
    ),
    "status-401": (401, error_body(f"Incorrect API key provided: {SECRET}", "invalid_api_key"), {}),
    "status-403": (403, {"error": "forbidden"}, {}),
    "status-404": (404, error_body("The model `status-404` does not exist.", "model_not_found"), {}),
    "status-429": (429, error_body("Slow down."), {"Retry-After": "7"}),
    "status-503": (503, "overloaded", {}),
    "status-500": (500, f"Traceback ... key={SECRET}", {}),
}


@dataclass
class FakeUpstream:
    """The OpenAI-compatible peer. The requested `model` picks the behaviour."""

    requests: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    peers: list[object] = field(default_factory=list)
    streaming: asyncio.Event = field(default_factory=asyncio.Event)
    stream_closed: asyncio.Event = field(default_factory=asyncio.Event)
    chunks_written: int = 0
    base_url: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.completions)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_post("/v1/embeddings", self.embeddings)
        return app

    async def _record(self, request: web.Request) -> dict[str, Any]:
        body: dict[str, Any] = await request.json()
        self.requests.append((request.path, body, dict(request.headers)))
        self.peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        return body

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        model, chat = body["model"], request.path.endswith("chat/completions")
        if model in ERRORS:
            status, payload, headers = ERRORS[model]
            if isinstance(payload, str):
                return web.Response(status=status, text=payload, headers=headers)
            return web.json_response(payload, status=status, headers=headers)
        if model == "slow":
            await asyncio.sleep(3)
        if model == "json":
            return web.json_response(
                {
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "whole"},
                            "finish_reason": "length",
                        }
                    ],
                    "usage": {"prompt_tokens": 4, "completion_tokens": 1},
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if model in ("endless", "stall"):
            return await self._endless(response, chat, stall=model == "stall")
        for part in _split(self._events(model, chat), 5):
            await response.write(part)
            await asyncio.sleep(0.001)
        await response.write_eof()
        return response

    def _events(self, model: str, chat: bool) -> bytes:
        reason = model.removeprefix("finish-") if model.startswith("finish-") else "stop"
        events = [b": keep-alive\n\n"]
        if chat:
            events.append(sse({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}))
        events += [sse({"choices": [_choice(piece, chat)]}) for piece in PIECES]
        if model == "cut":
            return b"".join(events)
        if model == "bad-json":
            return b"".join([*events, b"data: {not json\n\n"])
        if model == "stream-error":
            return b"".join([*events, sse({"error": {"message": "engine died", "type": "internal"}})])
        events.append(sse({"choices": [{**_choice("", chat), "finish_reason": reason}]}))
        if model != "no-usage":
            events.append(sse({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 5}}))
        events.append(sse("[DONE]"))
        return b"".join(events)

    async def _endless(self, response: web.StreamResponse, chat: bool, *, stall: bool) -> web.StreamResponse:
        try:
            for _ in range(10_000):
                await response.write(sse({"choices": [_choice("x", chat)]}))
                self.chunks_written += 1
                if self.chunks_written == 3:
                    self.streaming.set()
                await asyncio.sleep(3 if stall else 0.01)
        except (ConnectionError, asyncio.CancelledError):
            self.stream_closed.set()
            raise
        return response

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if body["model"] in ERRORS:
            status, payload, headers = ERRORS[body["model"]]
            if isinstance(payload, str):
                return web.Response(status=status, text=payload, headers=headers)
            return web.json_response(payload, status=status, headers=headers)
        if body["model"] == "slow":
            await asyncio.sleep(3)
        if body["model"] == "bad-indexes":
            return web.json_response({"data": [{"index": 0, "embedding": [1.0]}] * len(body["input"])})
        data = [
            {"object": "embedding", "index": i, "embedding": [float(i), 0.5]}
            for i in range(len(body["input"]))
        ]
        return web.json_response({"data": data[::-1], "usage": {"prompt_tokens": 11, "total_tokens": 11}})


def _choice(text: str, chat: bool) -> dict[str, Any]:
    return {"index": 0, "delta": {"content": text}} if chat else {"index": 0, "text": text}


def _split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    fake = FakeUpstream()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    fake.base_url = str(server.make_url("/v1"))
    yield fake
    await server.close()


MakeBackend = Callable[..., Awaitable[OpenAICompatBackend]]


@pytest.fixture
async def make_backend(upstream: FakeUpstream) -> AsyncIterator[MakeBackend]:
    backends: list[OpenAICompatBackend] = []

    async def make(
        upstream_model: str = "ok", task: str = "text-generation", **options: Any
    ) -> OpenAICompatBackend:
        options = {"base_url": upstream.base_url, "upstream_model": upstream_model, **options}
        backend = OpenAICompatBackend(ModelSpec(id="remote", task=task, backend="openai", options=options))
        await backend.start()
        backends.append(backend)
        return backend

    yield make
    for backend in backends:
        await backend.close()


async def collect(
    backend: OpenAICompatBackend,
    prompt: Prompt = CHAT,
    params: SamplingParams | None = None,
    *,
    into: list[str] | None = None,
) -> list[GenerationChunk]:
    chunks = []
    async for chunk in backend.generate(prompt, params or SamplingParams()):
        chunks.append(chunk)
        if into is not None:
            into.append(chunk.text)
    return chunks


async def test_chat_stream_passes_text_through(make_backend: MakeBackend, upstream: FakeUpstream) -> None:
    chunks = await collect(await make_backend())
    assert "".join(c.text for c in chunks) == "".join(PIECES)
    assert [c.text for c in chunks[:-1]] == PIECES
    assert all(c.finish_reason is None for c in chunks[:-1])
    assert chunks[-1] == GenerationChunk("", finish_reason="stop", prompt_tokens=7, completion_tokens=5)
    path, body, _ = upstream.requests[0]
    assert path == "/v1/chat/completions"
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


@pytest.mark.parametrize(
    ("prompt", "sent"),
    [(TextPrompt(text="Once upon"), "Once upon"), (TextPrompt(token_ids=(1, 2, 3)), [1, 2, 3])],
)
async def test_completion_stream_passes_text_through(
    make_backend: MakeBackend, upstream: FakeUpstream, prompt: TextPrompt, sent: object
) -> None:
    chunks = await collect(await make_backend(), prompt)
    assert "".join(c.text for c in chunks) == "".join(PIECES)
    assert (chunks[-1].prompt_tokens, chunks[-1].completion_tokens) == (7, 5)
    path, body, _ = upstream.requests[0]
    assert (path, body["prompt"]) == ("/v1/completions", sent)
    assert "messages" not in body


async def test_sampling_params_map_to_openai_fields(
    make_backend: MakeBackend, upstream: FakeUpstream
) -> None:
    params = SamplingParams(
        max_tokens=32,
        temperature=0.7,
        top_p=0.9,
        top_k=40,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        seed=123,
        stop=("\n\n", "END"),
        ignore_eos=True,
    )
    await collect(await make_backend("ok"), CHAT, params)
    _, body, headers = upstream.requests[0]
    assert body == {
        "model": "ok",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "n": 1,
        "max_tokens": 32,
        "temperature": 0.7,
        "top_p": 0.9,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "seed": 123,
        "stop": ["\n\n", "END"],
        "top_k": 40,
        "ignore_eos": True,
    }
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept-Encoding"] == "identity"
    assert "Authorization" not in headers


async def test_optional_fields_are_left_out(make_backend: MakeBackend, upstream: FakeUpstream) -> None:
    await collect(await make_backend(), TextPrompt(text="x"), SamplingParams())
    _, body, _ = upstream.requests[0]
    assert not {"seed", "stop", "top_k", "ignore_eos"} & body.keys()


@pytest.mark.parametrize(
    ("upstream_reason", "reason"),
    [
        ("length", "length"),
        ("stop", "stop"),
        ("content_filter", "stop"),
        ("tool_calls", "stop"),
        ("eos_token", "stop"),
    ],
)
async def test_finish_reasons(make_backend: MakeBackend, upstream_reason: str, reason: str) -> None:
    chunks = await collect(await make_backend(f"finish-{upstream_reason}"))
    assert chunks[-1].finish_reason == reason


async def test_missing_usage_counts_zero_and_says_so(
    make_backend: MakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="llmapi"):
        chunks = await collect(await make_backend("no-usage"))
    assert chunks[-1] == GenerationChunk("", finish_reason="stop", prompt_tokens=0, completion_tokens=0)
    assert "sent no usage" in caplog.text


async def test_a_non_streamed_json_answer_is_read_whole(make_backend: MakeBackend) -> None:
    chunks = await collect(await make_backend("json"))
    assert [c.text for c in chunks] == ["whole", ""]
    assert chunks[-1] == GenerationChunk("", finish_reason="length", prompt_tokens=4, completion_tokens=1)


@pytest.mark.parametrize(
    ("model", "match"),
    [
        ("cut", "ended before the generation finished"),
        ("bad-json", "not JSON"),
        ("stream-error", "reported an error: engine died"),
    ],
)
async def test_broken_streams_raise_upstream_error(make_backend: MakeBackend, model: str, match: str) -> None:
    backend = await make_backend(model)
    texts: list[str] = []
    with pytest.raises(UpstreamError, match=match) as caught:
        await collect(backend, into=texts)
    assert texts == PIECES
    assert caught.value.status_code == 502


async def test_embeddings_in_input_order(make_backend: MakeBackend, upstream: FakeUpstream) -> None:
    backend = await make_backend("embedder", task="embedding")
    result = await backend.embed(["a", "b", "c"])
    assert result.vectors == [[0.0, 0.5], [1.0, 0.5], [2.0, 0.5]]
    assert result.prompt_tokens == 11
    path, body, _ = upstream.requests[0]
    assert path == "/v1/embeddings"
    assert body == {"model": "embedder", "input": ["a", "b", "c"], "encoding_format": "float"}
    assert (await backend.embed([])).vectors == []


async def test_embeddings_with_bad_indexes_raise(make_backend: MakeBackend) -> None:
    backend = await make_backend("bad-indexes", task="embedding")
    with pytest.raises(UpstreamError, match="indexes do not match"):
        await backend.embed(["a", "b"])


@pytest.mark.parametrize(
    ("model", "error", "status", "fragments"),
    [
        ("status-400", InvalidRequestError, 400, ["temperature is too high"]),
        ("status-400-context", ContextLengthExceededError, 400, ["Prompt too long."]),
        ("status-400-vllm", ContextLengthExceededError, 400, ["maximum context length is 2048"]),
        ("status-401", UpstreamError, 502, ["rejected our credentials", "HTTP 401", "127.0.0.1"]),
        ("status-403", UpstreamError, 502, ["rejected our credentials", "HTTP 403"]),
        ("status-404", UpstreamError, 502, ["does not serve 'status-404'", "options.upstream_model"]),
        ("status-429", ServerOverloadedError, 429, ["overloaded", "HTTP 429"]),
        ("status-503", ServerOverloadedError, 503, ["overloaded", "HTTP 503"]),
        ("status-500", UpstreamError, 500, ["HTTP 500", "Traceback", "***"]),
    ],
)
async def test_upstream_errors_map_to_llmapi_errors(
    make_backend: MakeBackend, model: str, error: type[APIError], status: int, fragments: list[str]
) -> None:
    backend = await make_backend(model, api_key=SECRET)
    with pytest.raises(APIError) as caught:
        await collect(backend)
    exc = caught.value
    assert type(exc) is error
    assert exc.status_code == status
    for fragment in fragments:
        assert fragment in exc.message
    assert SECRET not in str(exc)
    assert SECRET not in json.dumps(exc.body())


@pytest.mark.parametrize("model", ["status-400", "status-401", "status-429", "status-500"])
async def test_embedding_errors_map_too(make_backend: MakeBackend, model: str) -> None:
    backend = await make_backend(model, task="embedding", api_key=SECRET)
    with pytest.raises(APIError) as caught:
        await backend.embed(["x"])
    assert (
        type(caught.value)
        is {
            "status-400": InvalidRequestError,
            "status-401": UpstreamError,
            "status-429": ServerOverloadedError,
            "status-500": UpstreamError,
        }[model]
    )
    assert SECRET not in str(caught.value)


async def test_error_details_are_kept(make_backend: MakeBackend) -> None:
    with pytest.raises(InvalidRequestError) as bad:
        await collect(await make_backend("status-400"))
    assert (bad.value.param, bad.value.code) == ("temperature", "invalid_value")
    with pytest.raises(ContextLengthExceededError) as long:
        await collect(await make_backend("status-400-context"))
    assert (long.value.param, long.value.code) == ("messages", "context_length_exceeded")
    with pytest.raises(ServerOverloadedError) as busy:
        await collect(await make_backend("status-429"))
    assert busy.value.headers == {"Retry-After": "7"}
    with pytest.raises(ServerOverloadedError) as busy:
        await collect(await make_backend("status-503"))
    assert busy.value.headers == {"Retry-After": "1"}


async def test_api_key_is_sent_as_bearer_and_never_logged(
    make_backend: MakeBackend,
    upstream: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("REMOTE_KEY", SECRET)
    with caplog.at_level(logging.DEBUG):
        backend = await make_backend(api_key_env="REMOTE_KEY")
        await collect(backend)
        with pytest.raises(UpstreamError) as caught:
            await collect(await make_backend("status-401", api_key=SECRET))
    assert [headers["Authorization"] for _, _, headers in upstream.requests] == [f"Bearer {SECRET}"] * 2
    assert SECRET not in caplog.text
    assert SECRET not in str(caught.value)


async def test_connection_refused_names_the_upstream(make_backend: MakeBackend) -> None:
    port = _free_port()
    options = {"base_url": f"http://127.0.0.1:{port}/v1", "api_key": SECRET, "max_retries": 1}
    text, embedder = await make_backend(**options), await make_backend(task="embedding", **options)
    for call in (lambda: collect(text), lambda: embedder.embed(["x"])):
        with pytest.raises(UpstreamError) as caught:
            await call()
        assert type(caught.value) is UpstreamError
        assert (
            f"cannot reach its upstream at http://127.0.0.1:{port} (connection refused)"
            in caught.value.message
        )
        assert "Check that the upstream server is running" in caught.value.message
        assert SECRET not in str(caught.value)


async def test_unresolvable_host_is_reported(make_backend: MakeBackend) -> None:
    backend = await make_backend(base_url="http://no-such-host.invalid/v1", max_retries=0)
    with pytest.raises(
        UpstreamError, match=r"at http://no-such-host.invalid \(its host name does not resolve\)"
    ):
        await collect(backend)


async def test_connection_reset_is_reported(make_backend: MakeBackend) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        backend = await make_backend(base_url=f"http://127.0.0.1:{port}/v1")
        with pytest.raises(UpstreamError, match="dropped the connection") as caught:
            await collect(backend)
        assert f"http://127.0.0.1:{port}" in caught.value.message
    finally:
        server.close()
        await server.wait_closed()


async def test_connection_is_retried_until_the_upstream_is_up(make_backend: MakeBackend) -> None:
    port = _free_port()
    late = FakeUpstream()
    server = TestServer(late.app(), host="127.0.0.1", port=port)

    async def start_late() -> None:
        await asyncio.sleep(0.15)
        await server.start_server()

    starting = asyncio.create_task(start_late())
    try:
        backend = await make_backend(base_url=f"http://127.0.0.1:{port}/v1", max_retries=6)
        chunks = await collect(backend)
        assert "".join(c.text for c in chunks) == "".join(PIECES)
        assert len(late.requests) == 1
    finally:
        await starting
        await server.close()


@pytest.mark.parametrize("model", ["slow", "stall"])
async def test_generation_timeout(make_backend: MakeBackend, model: str) -> None:
    backend = await make_backend(model, timeout=0.3)
    with pytest.raises(UpstreamTimeoutError, match=r"did not answer within 0.3 s") as caught:
        await collect(backend)
    assert caught.value.status_code == 504


async def test_embedding_timeout(make_backend: MakeBackend) -> None:
    backend = await make_backend("slow", task="embedding", timeout=0.3)
    with pytest.raises(UpstreamTimeoutError):
        await backend.embed(["x"])


async def test_closing_the_stream_early_closes_the_upstream(
    make_backend: MakeBackend, upstream: FakeUpstream
) -> None:
    stream = (await make_backend("endless")).generate(CHAT, SamplingParams())
    assert (await anext(stream)).text == "x"
    assert (await anext(stream)).text == "x"
    await stream.aclose()
    await asyncio.wait_for(upstream.stream_closed.wait(), timeout=2)
    assert upstream.chunks_written < 100


async def test_cancelling_the_consumer_closes_the_upstream(
    make_backend: MakeBackend, upstream: FakeUpstream
) -> None:
    backend = await make_backend("endless")
    consumer = asyncio.create_task(collect(backend))
    await asyncio.wait_for(upstream.streaming.wait(), timeout=2)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    await asyncio.wait_for(upstream.stream_closed.wait(), timeout=2)


async def test_connections_are_reused(make_backend: MakeBackend, upstream: FakeUpstream) -> None:
    backend = await make_backend()
    await collect(backend)
    await collect(backend)
    assert len(upstream.peers) == 2
    assert upstream.peers[0] == upstream.peers[1]


async def test_lifecycle_and_misuse(make_backend: MakeBackend) -> None:
    spec = ModelSpec(
        id="r", task="text-generation", backend="openai", options={"base_url": "http://127.0.0.1:1/v1"}
    )
    backend = OpenAICompatBackend(spec)
    with pytest.raises(ServiceUnavailableError, match="not started"):
        await collect(backend)
    await backend.start()  # the upstream is not up: starting must not need it
    await backend.start()
    await backend.close()
    await backend.close()
    with pytest.raises(WrongTaskError):
        await (await make_backend()).embed(["x"])
    with pytest.raises(WrongTaskError):
        await collect(await make_backend(task="embedding"))
    with pytest.raises(InvalidRequestError, match="text or token ids"):
        await collect(await make_backend(), TextPrompt())


def test_card() -> None:
    options = {"base_url": "http://h:1/v1", "context_length": 4096, "owned_by": "vllm"}
    backend = OpenAICompatBackend(ModelSpec(id="m", task="embedding", backend="openai", options=options))
    card = backend.card
    assert (card.id, card.task, card.owned_by, card.context_length) == ("m", "embedding", "vllm", 4096)
    assert card.created > 0
    assert backend.card.created == card.created
    plain = OpenAICompatBackend(
        ModelSpec(id="m", task="text-generation", backend="openai", options=options | {"owned_by": None})
    )
    assert plain.card.owned_by == "remote"


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"base_url": "ftp://host/v1"}, "must be an http"),
        ({"base_url": "127.0.0.1:8001"}, "must be an http"),
        ({"base_url": "http://h/v1?x=1"}, "query or fragment"),
        ({"base_url": 8001}, "options.base_url must be"),
        ({"api_key": SECRET, "api_key_env": "X"}, "not both"),
        ({"api_key_env": "LLMAPI_TEST_UNSET_KEY"}, "LLMAPI_TEST_UNSET_KEY, which is not set"),
        ({"api_key": ""}, "options.api_key must be a non-empty string"),
        ({"timeout": 0}, "options.timeout must be a positive number"),
        ({"timeout": "10"}, "options.timeout must be a positive number"),
        ({"connect_timeout": True}, "options.connect_timeout must be a positive number"),
        ({"max_retries": -1}, "options.max_retries must be a whole number of at least 0"),
        ({"max_retries": 1.5}, "options.max_retries"),
        ({"context_length": 0}, "options.context_length must be a whole number of at least 1"),
        ({"upstream_model": ""}, "options.upstream_model must be a non-empty string"),
        ({"timout": 5}, r"unknown options \['timout'\]"),
    ],
)
def test_invalid_options_are_refused(
    options: dict[str, Any], match: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMAPI_TEST_UNSET_KEY", raising=False)
    spec = ModelSpec(
        id="m", task="text-generation", backend="openai", options={"base_url": "http://h/v1", **options}
    )
    with pytest.raises(ConfigError, match=match) as caught:
        OpenAICompatBackend(spec)
    assert str(caught.value).startswith("model 'm': ")
    assert SECRET not in str(caught.value)


def test_defaults() -> None:
    spec = ModelSpec(
        id="m",
        task="text-generation",
        backend="openai",
        source="org/model",
        options={"base_url": "http://h:9/v1/"},
    )
    assert OpenAICompatBackend(spec)._options.upstream_model == "org/model"
    spec = ModelSpec(id="m", task="text-generation", backend="openai", options={"base_url": "http://h:9/v1/"})
    options = OpenAICompatBackend(spec)._options
    assert (options.upstream_model, options.timeout, options.connect_timeout, options.max_retries) == (
        "m",
        600,
        5,
        2,
    )
    assert str(options.endpoint("completions")) == "http://h:9/v1/completions"
    assert SECRET not in repr(options)
