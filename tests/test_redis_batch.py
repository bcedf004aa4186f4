"""Commands of one loop turn share a round trip, and each still gets its own reply or error."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from llmapi.redis_batch import RedisBatch
from tests.real_services import require_redis


async def test_each_command_gets_its_own_reply_or_error() -> None:
    client = aioredis.Redis.from_url(require_redis())
    key = f"llmapi-test:{uuid.uuid4().hex}"
    try:
        batch = RedisBatch(client)
        results = await asyncio.gather(
            batch.command("SET", key, b"text"),
            batch.command("GET", key),
            batch.command("INCR", key),  # not a number: an error for this command alone
            batch.command("STRLEN", key),
            return_exceptions=True,
        )
    finally:
        await client.delete(key)
        await client.aclose()

    assert results[0] is True and results[1] == b"text" and results[3] == 4
    assert isinstance(results[2], ResponseError)


async def test_a_caller_that_gave_up_does_not_hold_up_the_others() -> None:
    client = aioredis.Redis.from_url(require_redis())
    try:
        batch = RedisBatch(client)
        abandoned = batch.command("PING")
        kept = batch.command("ECHO", "still here")
        abandoned.cancel()
        assert await kept == b"still here"
    finally:
        await client.aclose()


async def test_an_unreachable_redis_fails_every_command_of_the_batch() -> None:
    client = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    try:
        batch = RedisBatch(client)
        results = await asyncio.gather(
            batch.command("PING"), batch.command("GET", "x"), return_exceptions=True
        )
    finally:
        await client.aclose()

    assert all(isinstance(result, RedisConnectionError | OSError) for result in results), results


@pytest.mark.parametrize("count", [1, 64])
async def test_replies_come_back_in_order(count: int) -> None:
    client = aioredis.Redis.from_url(require_redis())
    try:
        batch = RedisBatch(client)
        replies = await asyncio.gather(*(batch.command("ECHO", str(i)) for i in range(count)))
    finally:
        await client.aclose()

    assert replies == [str(i).encode() for i in range(count)]
