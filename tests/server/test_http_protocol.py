"""The guarded protocol under a real uvicorn in this process, over real sockets, with a tiny app: the limits
cut off slow and oversized heads and slow bodies, and nothing else (time the app takes, bodies sent with
their head, requests sent back to back)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from tests.servers import free_port

from llmapi.config import ServerSettings
from llmapi.server.http_protocol import http_protocol

LIMITS = ServerSettings(
    header_timeout_seconds=0.3, body_timeout_seconds=0.3, keep_alive_timeout_seconds=5, max_header_bytes=1_024
)
SLOW_S = 1.0  # longer than either deadline
SLACK_S = 2.0


async def echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the length of the body it read, after `?sleep=` seconds."""
    if scope["type"] != "http":
        return
    await asyncio.sleep(float(parse_qs(scope["query_string"].decode()).get("sleep", ["0"])[0]))
    body, more = b"", True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        more = message.get("more_body", False)
    answer = str(len(body)).encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module")
async def port() -> AsyncIterator[int]:
    chosen = free_port()
    config = uvicorn.Config(
        echo_length,
        host="127.0.0.1",
        port=chosen,
        http=http_protocol(LIMITS),
        ws="none",
        lifespan="off",
        log_config=None,
        timeout_keep_alive=LIMITS.keep_alive_timeout_seconds,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn has no event to wait on)
        await asyncio.sleep(0.01)
    yield chosen
    server.should_exit = True
    await serving


@contextlib.asynccontextmanager
async def connection(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()


async def response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), SLACK_S)
    lines = head.decode().split("\r\n")
    length = next(int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length:"))
    return int(lines[0].split()[1]), await asyncio.wait_for(reader.readexactly(length), SLACK_S)


async def closed(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), SLACK_S) == b""
    except TimeoutError:
        return False


def post(body: bytes, path: str = "/") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


async def test_a_body_sent_with_its_head_does_not_count_as_head(port: int) -> None:
    async with connection(port) as (reader, writer):
        writer.write(post(b"x" * 200_000))

        assert await response(reader) == (200, b"200000")


async def test_requests_sent_back_to_back_are_all_served(port: int) -> None:
    async with connection(port) as (reader, writer):
        writer.write(post(b"a" * 700) + post(b"b" * 700) + b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")

        assert [await response(reader) for _ in range(3)] == [(200, b"700"), (200, b"700"), (200, b"0")]


async def test_the_time_an_app_takes_is_not_the_clients(port: int) -> None:
    async with connection(port) as (reader, writer):
        writer.write(post(b"x" * 10, f"/?sleep={SLOW_S}"))

        assert await asyncio.wait_for(response(reader), SLOW_S + SLACK_S) == (200, b"10")


async def test_a_head_at_the_limit_is_served_and_one_byte_more_is_431(port: int) -> None:
    def head_of(size: int) -> bytes:
        start = b"GET / HTTP/1.1\r\nHost: t\r\nX-Pad: "
        return start + b"a" * (size - len(start) - 4) + b"\r\n\r\n"

    async with connection(port) as (reader, writer):
        writer.write(head_of(LIMITS.max_header_bytes))
        assert await response(reader) == (200, b"0")
        writer.write(head_of(LIMITS.max_header_bytes + 1))
        status, body = await response(reader)

        assert status == 431
        assert b"1,024 bytes" in body
        assert await closed(reader)


async def test_a_later_head_dripped_on_a_kept_alive_connection_gets_408(port: int) -> None:
    async with connection(port) as (reader, writer):
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert await response(reader) == (200, b"0")
        await asyncio.sleep(LIMITS.header_timeout_seconds * 2)  # idle is not slow: keep-alive's to judge
        for byte in b"GET / HTTP/1.1\r\nHost: t\r\n":
            if writer.is_closing() or reader.at_eof():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.05)
        status, _ = await response(reader)

        assert status == 408
        assert await closed(reader)


async def test_a_slow_head_behind_a_slow_answer_lets_that_answer_finish(port: int) -> None:
    async with connection(port) as (reader, writer):
        writer.write(post(b"x", f"/?sleep={SLOW_S}") + b"GET / HTTP/1.1\r\n")  # the second head never ends

        assert await asyncio.wait_for(response(reader), SLOW_S + SLACK_S) == (200, b"1")
        assert await closed(reader)


async def test_a_body_that_stops_coming_gets_408(port: int) -> None:
    async with connection(port) as (reader, writer):
        writer.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        status, body = await response(reader)

        assert status == 408
        assert b'"code":"request_timeout"' in body
        assert await closed(reader)


async def test_a_connection_that_sends_nothing_is_closed_without_an_answer(port: int) -> None:
    async with connection(port) as (reader, _):
        assert await asyncio.wait_for(reader.read(), LIMITS.header_timeout_seconds + SLACK_S) == b""


async def test_a_body_queued_behind_a_slow_answer_is_not_timed_out_meanwhile(port: int) -> None:
    """uvicorn reads no more of a request sent behind another until that one is answered: its body's
    deadline waits too."""
    second = post(b"y" * 20)
    async with connection(port) as (reader, writer):
        writer.write(post(b"x", f"/?sleep={SLOW_S}") + second[:-10])
        await asyncio.sleep(LIMITS.body_timeout_seconds * 2)
        writer.write(second[-10:])

        answers = [await asyncio.wait_for(response(reader), SLOW_S + SLACK_S) for _ in range(2)]

    assert answers == [(200, b"1"), (200, b"20")]
