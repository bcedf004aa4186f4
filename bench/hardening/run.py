"""What the request-path hardening costs per request, in process, on one core:

    taskset -c 0 .venv/bin/python -m bench.hardening.run

- the guarded protocol (`server/http_protocol.py`) against uvicorn's own httptools protocol: a fake transport
  takes the bytes, a trivial ASGI app answers; a whole request per `data_received`, on a kept-alive
  connection and on a new connection per request (a deadline armed at the start and cancelled);
- the security headers, added where `RequestContextMiddleware` adds `x-request-id`, against the same
  middleware without them and against a middleware layer of their own.

Best of 5 rounds of 50,000 requests, in µs per request. Prints a Markdown table.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
import uvloop
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from llmapi.api import context_middleware
from llmapi.api.context_middleware import RequestContextMiddleware
from llmapi.api.security_headers import add_security_headers
from llmapi.config import ServerSettings
from llmapi.server.http_protocol import http_protocol

ROUNDS, REQUESTS = 5, 50_000
BODY = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'
REQUEST = (
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: bench\r\nAccept: */*\r\n"
    b"Authorization: Bearer llmapi-0123456789abcdef0123456789abcdef\r\nContent-Type: application/json\r\n"
    b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)


async def tiny_app(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}"})


class NullTransport:
    def __init__(self) -> None:
        self.closing = False

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def best_of(one: Callable[[], Awaitable[None]]) -> float:
    for _ in range(1_000):
        await one()
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(REQUESTS):
            await one()
        best = min(best, (time.perf_counter() - start) / REQUESTS * 1e6)
    return best


async def protocol_cost(protocol: type[HttpToolsProtocol], *, new_connection: bool) -> float:
    config = uvicorn.Config(tiny_app, lifespan="off", log_config=None, ws="none", access_log=False)
    config.load()
    state, loop = ServerState(), asyncio.get_running_loop()

    def connect() -> HttpToolsProtocol:
        connection = protocol(config=config, server_state=state, app_state={}, _loop=loop)
        connection.connection_made(NullTransport())  # type: ignore[arg-type]
        return connection

    kept = connect()

    async def one() -> None:
        connection = connect() if new_connection else kept
        connection.data_received(REQUEST)
        await asyncio.sleep(0)  # the request's task runs
        await asyncio.sleep(0)
        if new_connection:
            connection.connection_lost(None)

    return await best_of(one)


class SecurityHeadersLayer:
    """The headers as a middleware of their own, for comparison."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_security_headers(MutableHeaders(scope=message).raw)
            await send(message)

        await self.app(scope, receive, send_hardened)


async def middleware_cost(app: ASGIApp) -> float:
    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    async def one() -> None:
        scope = {"type": "http", "method": "GET", "path": "/v1/models", "headers": [(b"host", b"x")]}
        await app(scope, receive, send)

    return await best_of(one)


async def main() -> None:
    guarded = http_protocol(ServerSettings())
    print("| what | baseline µs | with hardening µs | cost µs |\n|---|---:|---:|---:|")
    for new_connection, label in ((False, "a kept-alive connection"), (True, "a new connection per request")):
        base = await protocol_cost(HttpToolsProtocol, new_connection=new_connection)
        ours = await protocol_cost(guarded, new_connection=new_connection)
        print(f"| protocol, {label} | {base:.2f} | {ours:.2f} | {ours - base:+.2f} |")

    endpoint = Response(b'{"ok":true}', media_type="application/json")
    with_headers = await middleware_cost(RequestContextMiddleware(endpoint))
    # The same middleware with the headers turned into a no-op: x-request-id only, as it was before.
    context_middleware.add_security_headers = lambda headers: None  # type: ignore[assignment]
    without = await middleware_cost(RequestContextMiddleware(endpoint))
    layered = await middleware_cost(SecurityHeadersLayer(RequestContextMiddleware(endpoint)))
    print(
        f"| security headers, in RequestContextMiddleware | {without:.2f} | {with_headers:.2f} | "
        f"{with_headers - without:+.2f} |"
    )
    print(
        f"| security headers, as a middleware of their own | {without:.2f} | {layered:.2f} | "
        f"{layered - without:+.2f} |"
    )


if __name__ == "__main__":
    uvloop.run(main())
