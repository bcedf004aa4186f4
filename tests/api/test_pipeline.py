"""The request pipeline in process: the order of work (authenticate, then read and decode the body), the
event loop kept free while bodies are decoded, and an unexpected failure answered like any error."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.api.inprocess import InProcess, in_process
from tests.servers import ADMIN_HEADERS
from tests.text_backend import ScriptedTextBackend

from llmapi.api.request_body import BodyDecoder
from llmapi.backends.base import ModelCard, Sentiment
from llmapi.backends.local.vader import VaderSentimentBackend
from llmapi.model_specs import ModelSpec

FOUR_MIB = 4 << 20
CHAT = "/v1/chat/completions"
JSON, XML, PROTOBUF = "application/json", "application/xml", "application/x-protobuf"


def hostile_bodies() -> dict[str, bytes]:
    """4 MiB bodies of tiny structures, each as slow as it gets to decode in its format."""
    return {
        JSON: b'{"model":"scripted","x":[' + b",".join([b"[[]]"] * (FOUR_MIB // 5 - 8)) + b"]}",
        XML: b"<request><messages>" + b"<item/>" * (FOUR_MIB // 7 - 8) + b"</messages></request>",
        PROTOBUF: b"\x0a\x00" * (FOUR_MIB // 2),  # ChatCompletionRequest: two million empty messages
    }


class FailingSentiment:
    """A sentiment model with a bug: every call raises."""

    card = ModelCard(id="failing", task="sentiment", owned_by="tests", created=0)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def analyze(self, texts: Sequence[str]) -> tuple[list[Sentiment], int]:
        raise RuntimeError("a bug in the sentiment model")


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[InProcess]:
    vader = VaderSentimentBackend(ModelSpec(id="vader", task="sentiment", backend="vader"))
    async with in_process(tmp_path, ScriptedTextBackend(), vader, FailingSentiment()) as running:
        yield running


class LoopWatch:
    """The longest the event loop went without running a 1 ms timer, while the watch runs."""

    def __init__(self) -> None:
        self.longest_s = 0.0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopWatch:
        self._task = asyncio.create_task(self._watch())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _watch(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            self.longest_s = max(self.longest_s, time.perf_counter() - start - 0.001)


def decode_calls(stack: InProcess, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    decoder: BodyDecoder = stack.app.state.body_decoder
    decode = decoder.decode

    async def counting(request: Any, **kwargs: Any) -> Any:
        calls.append(request.url.path)
        return await decode(request, **kwargs)

    monkeypatch.setattr(decoder, "decode", counting)
    return calls


def usage_statuses(database: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(database) as connection:
        return connection.execute("SELECT endpoint, status_code FROM usage_records ORDER BY id").fetchall()


async def test_every_answer_carries_its_request_id(stack: InProcess) -> None:
    own = await stack.client.get("/v1/models", headers={**ADMIN_HEADERS, "x-request-id": "mine-1"})
    refused = await stack.client.get("/v1/models")
    unrouted = await stack.client.get("/nowhere")

    assert own.headers["x-request-id"] == "mine-1"
    assert len(refused.headers["x-request-id"]) == 32
    assert len(unrouted.headers["x-request-id"]) == 32


@pytest.mark.parametrize("media_type", [JSON, XML, PROTOBUF])
async def test_a_body_without_a_credential_is_refused_unread(
    stack: InProcess, monkeypatch: pytest.MonkeyPatch, media_type: str
) -> None:
    decoded = decode_calls(stack, monkeypatch)

    response = await stack.client.post(
        CHAT, content=hostile_bodies()[media_type], headers={"Content-Type": media_type}
    )

    assert response.status_code == 401
    assert decoded == []


@pytest.mark.parametrize("media_type", [JSON, XML, PROTOBUF])
async def test_an_empty_body_is_a_400_at_once(stack: InProcess, media_type: str) -> None:
    response = await asyncio.wait_for(
        stack.client.post(CHAT, content=b"", headers={**ADMIN_HEADERS, "Content-Type": media_type}), 10
    )

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "A required field is missing."


async def test_a_body_over_the_size_limit_is_401_without_a_credential_and_413_with_one(
    stack: InProcess,
) -> None:
    oversized = b"{" + b" " * (5 << 20) + b"}"

    anonymous = await stack.client.post(CHAT, content=oversized)
    authenticated = await stack.client.post(CHAT, content=oversized, headers=ADMIN_HEADERS)

    assert anonymous.status_code == 401
    assert authenticated.status_code == 413


@pytest.mark.parametrize("media_type", [JSON, XML, PROTOBUF])
async def test_health_stays_fast_while_unauthenticated_bodies_arrive(
    stack: InProcess, media_type: str
) -> None:
    body = hostile_bodies()[media_type]
    latencies: list[float] = []

    async def health_checks() -> None:
        for _ in range(20):
            start = time.perf_counter()
            assert (await stack.client.get("/health/live")).status_code == 200
            latencies.append(time.perf_counter() - start)

    hostile = [stack.client.post(CHAT, content=body, headers={"Content-Type": media_type}) for _ in range(3)]
    answers = await asyncio.gather(health_checks(), *hostile)

    assert [a.status_code for a in answers[1:]] == [401, 401, 401]
    assert max(latencies) < 0.1


@pytest.mark.parametrize("media_type", [JSON, XML, PROTOBUF])
async def test_an_authenticated_hostile_body_is_decoded_without_stalling_the_loop(
    stack: InProcess, media_type: str
) -> None:
    body = hostile_bodies()[media_type]

    async with LoopWatch() as watch:
        response = await stack.client.post(
            CHAT, content=body, headers={**ADMIN_HEADERS, "Content-Type": media_type}
        )

    assert response.status_code == 400, response.text
    assert watch.longest_s < 0.05


async def test_a_large_valid_body_is_decoded_and_validated_off_the_loop(stack: InProcess) -> None:
    messages = [{"role": "user", "content": "the capital of France? " * 80}] * 2048
    body = orjson.dumps({"model": "scripted", "messages": messages, "max_tokens": 2})

    async with LoopWatch() as watch:
        response = await stack.client.post(CHAT, content=body, headers=ADMIN_HEADERS)

    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "The capital"
    assert watch.longest_s < 0.05


async def test_a_forced_500_is_an_openai_error_in_xml_with_its_request_id_recorded_as_500(
    stack: InProcess,
) -> None:
    response = await stack.client.post(
        "/v1/analyze/sentiment",
        json={"model": "failing", "text": "hello"},
        headers={**ADMIN_HEADERS, "Accept": XML, "x-request-id": "boom-1"},
    )
    await stack.app.state.identity.usage.flush()

    assert response.status_code == 500
    assert response.headers["content-type"] == XML
    assert response.headers["x-request-id"] == "boom-1"
    assert b"<code>internal_error</code>" in response.content
    assert b"boom-1" in response.content
    assert b"a bug in the sentiment model" not in response.content
    assert usage_statuses(stack.database)[-1] == ("/v1/analyze/sentiment", 500)


async def test_usage_records_every_authenticated_answer_with_its_status(stack: InProcess) -> None:
    ok = await stack.client.post("/v1/analyze/sentiment", json={"text": "great"}, headers=ADMIN_HEADERS)
    invalid = await stack.client.post("/v1/analyze/sentiment", json={"texts": []}, headers=ADMIN_HEADERS)
    anonymous = await stack.client.post("/v1/analyze/sentiment", json={"text": "great"})
    await stack.app.state.identity.usage.flush()

    assert (ok.status_code, invalid.status_code, anonymous.status_code) == (200, 400, 401)
    assert usage_statuses(stack.database) == [("/v1/analyze/sentiment", 200), ("/v1/analyze/sentiment", 400)]


async def test_an_inference_answer_carries_its_limits_and_cache_status(stack: InProcess) -> None:
    developer = await stack.new_key(role="developer", rate_limits={"requests_per_minute": 5})
    request = {"model": "scripted", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}

    first = await stack.client.post(CHAT, json=request, headers=developer)
    second = await stack.client.post(CHAT, json=request, headers=developer)

    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert first.headers["x-ratelimit-limit-requests"] == "5"
    assert second.headers["x-ratelimit-remaining-requests"] == "3"
    assert second.json()["choices"] == first.json()["choices"]


async def test_a_protobuf_answer_the_route_has_no_form_for_is_refused_before_any_work(
    stack: InProcess,
) -> None:
    response = await stack.client.post(
        "/v1/admin/keys", json={"name": "never made"}, headers={**ADMIN_HEADERS, "Accept": PROTOBUF}
    )
    keys = await stack.client.get("/v1/admin/keys", headers=ADMIN_HEADERS)

    assert response.status_code == 406
    assert response.json()["error"]["code"] == "not_acceptable"
    assert "never made" not in keys.text


async def test_an_error_on_an_unrouted_path_comes_in_the_asked_format(stack: InProcess) -> None:
    response = await stack.client.get("/v1/nowhere", headers={**ADMIN_HEADERS, "Accept": XML})

    assert response.status_code == 404
    assert response.headers["content-type"] == XML
    assert b"<code>unknown_route</code>" in response.content


@pytest.mark.parametrize("content_type", ["text/plain", PROTOBUF])
async def test_a_body_in_a_format_the_route_does_not_take_is_415(stack: InProcess, content_type: str) -> None:
    response = await stack.client.post(
        "/v1/admin/keys", content=b"x", headers={**ADMIN_HEADERS, "Content-Type": content_type}
    )

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


async def test_streams_are_answered_in_process(stack: InProcess) -> None:
    request = {"model": "scripted", "messages": [{"role": "user", "content": "hi"}], "stream": True}

    response = await stack.client.post(CHAT, json=request, headers=ADMIN_HEADERS)

    events = [line for line in response.text.splitlines() if line.startswith("data: ")]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert events[-1] == "data: [DONE]"
    text = "".join(
        choice["delta"].get("content", "")
        for event in events[:-1]
        for choice in orjson.loads(event.removeprefix("data: "))["choices"]
    )
    assert text == "The capital of France is Paris."
