from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from llmapi.auth.invalidation import EVERYTHING, InvalidationError, RedisInvalidation


async def eventually(condition: Callable[[], bool], within: float = 1.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"not true within {within} s")
        await asyncio.sleep(0.01)


async def test_a_message_reaches_every_subscriber_and_a_reconnect_clears_all(
    redis_url: str, channel: str
) -> None:
    name = f"llmapi-test-{uuid.uuid4().hex[:12]}"
    listener = RedisInvalidation(redis_url, channel, client_name=name, backoff_initial=0.05)
    sender = RedisInvalidation(redis_url, channel, client_name=name + "-sender")
    heard: list[str] = []
    try:
        await listener.start(heard.append)
        await eventually(lambda: listener.listening)
        assert heard == [EVERYTHING]  # nothing can have been missed, but nothing is assumed either
        await sender.publish("key_1")
        await eventually(lambda: heard[-1:] == ["key_1"])

        admin = aioredis.Redis.from_url(redis_url)
        try:  # kill only this test's subscriber connection
            for client in await admin.client_list(_type="pubsub"):
                if client.get("name") == name:
                    await admin.client_kill_filter(_id=client["id"])
        finally:
            await admin.aclose()
        await eventually(lambda: heard.count(EVERYTHING) == 2, within=3.0)
        await sender.publish("key_2")
        await eventually(lambda: heard[-1:] == ["key_2"])
    finally:
        await listener.close()
        await sender.close()


async def test_an_unreachable_redis_neither_raises_nor_listens(channel: str) -> None:
    channel_down = RedisInvalidation("redis://127.0.0.1:9/0", channel, backoff_max=0.2)
    try:
        await channel_down.start(lambda key_id: None)
        await asyncio.sleep(0.2)
        assert not channel_down.listening
        with pytest.raises(InvalidationError):
            await channel_down.publish("key_1")
    finally:
        await channel_down.close()
