"""The ceiling of a Python proxy: a bare FastAPI app forwarding chat completions with one aiohttp session.

BENCH_UPSTREAM_URL=http://127.0.0.1:8001/v1/chat/completions uvicorn bench.gateway.proxy:app

`POST /v1/chat/completions` sends the request's body bytes upstream as they came and answers the upstream's
status and bytes: a JSON answer read whole, an event stream passed on piece by piece as it arrives. No
middleware, no auth, no parsing: what any Python proxy on this stack pays at least.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from fastapi import FastAPI, Request
from starlette.responses import Response, StreamingResponse

UPSTREAM = os.environ["BENCH_UPSTREAM_URL"]
_JSON = {"content-type": "application/json", "accept-encoding": "identity"}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    connector = aiohttp.TCPConnector(limit=100, keepalive_timeout=4.0)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as session:
        app.state.session = session
        yield


app = FastAPI(lifespan=lifespan)


@app.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    session: aiohttp.ClientSession = request.app.state.session
    upstream = await session.post(UPSTREAM, data=await request.body(), headers=_JSON)
    content_type = upstream.headers.get("content-type", "application/json")
    if not content_type.startswith("text/event-stream"):
        try:
            return Response(await upstream.read(), upstream.status, media_type=content_type)
        finally:
            upstream.release()

    async def pieces() -> AsyncIterator[bytes]:
        try:
            async for piece in upstream.content.iter_any():
                yield piece
        finally:
            upstream.release()

    return StreamingResponse(pieces(), upstream.status, media_type=content_type)
