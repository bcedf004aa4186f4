"""SharedRedis bounds every call and opens its breaker when Redis hangs; a call cut short poisons nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from llmapi.shared_redis import CALL_TIMEOUT_S, RedisUnavailableError, SharedRedis
from tests.real_services import require_redis


@pytest.fixture
async def hung_redis_url() -> AsyncIterator[str]:
    """A server that accepts connections and reads what it is sent, but never answers."""
    connections: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while await reader.read(65536):
            pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.close()
        for writer in connections:
            writer.close()


async def test_a_hung_redis_fails_within_the_bound_then_the_breaker_refuses_at_once(
    hung_redis_url: str,
) -> None:
    shared = SharedRedis.from_url(hung_redis_url)
    try:
        for _ in range(3):  # the breaker's threshold
            started = time.monotonic()
            async with asyncio.timeout(5):  # fails the test, not hangs it, if nothing bounds the call
                with pytest.raises(RedisUnavailableError, match="TimeoutError"):
                    await shared.run("test", shared.client.ping)
            assert time.monotonic() - started < CALL_TIMEOUT_S + 0.5

        started = time.monotonic()
        with pytest.raises(RedisUnavailableError, match="circuit open"):
            await shared.run("test", shared.client.ping)
        assert time.monotonic() - started < 0.05
        assert shared.degraded
    finally:
        await shared.close()


async def test_a_call_cut_short_leaves_no_late_reply_for_the_next_one() -> None:
    client = aioredis.Redis.from_url(require_redis(), max_connections=1)  # the next call gets the same one
    shared = SharedRedis(client, timeout_s=0.1)
    try:
        with pytest.raises(RedisUnavailableError):
            await shared.run("test", lambda: client.blpop([f"llmapi-test:{uuid.uuid4().hex}"], timeout=1))

        assert await shared.run("test", lambda: client.echo("after")) == b"after"
        assert not shared.degraded
    finally:
        await shared.close()
