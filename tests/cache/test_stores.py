from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
import redis.asyncio as aioredis

from llmapi.cache.memory_store import MemoryCacheStore
from llmapi.cache.redis_store import RedisCacheStore
from llmapi.cache.store import CacheStore
from tests.real_services import require_redis

MAX_ENTRY_BYTES = 64


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class StoreCase:
    """A store under test, a source of keys of this test alone, and a way to let time pass."""

    store: CacheStore
    advance: Callable[[float], Awaitable[None]]
    keys: list[str] = field(default_factory=list)

    def key(self) -> str:
        self.keys.append(f"llmapi-test:cache:{uuid.uuid4().hex}")
        return self.keys[-1]


@pytest.fixture(params=["memory", "redis"])
async def case(request: pytest.FixtureRequest) -> AsyncIterator[StoreCase]:
    if request.param == "memory":
        clock = FakeClock()

        async def tick(seconds: float) -> None:
            clock.now += seconds

        yield StoreCase(MemoryCacheStore(10_000, MAX_ENTRY_BYTES, clock=clock), tick)
        return
    client = aioredis.Redis.from_url(require_redis(), socket_connect_timeout=1.0, socket_timeout=1.0)
    redis_case = StoreCase(RedisCacheStore(client, MAX_ENTRY_BYTES), asyncio.sleep)
    try:
        yield redis_case
    finally:
        await redis_case.store.close()
        if redis_case.keys:
            await client.delete(*redis_case.keys)
        await client.aclose()


async def test_a_value_comes_back(case: StoreCase) -> None:
    key = case.key()
    await case.store.set(key, b"\x00response\xff", ttl_s=60)
    assert await case.store.get(key) == b"\x00response\xff"


async def test_a_new_value_replaces_the_old(case: StoreCase) -> None:
    key = case.key()
    await case.store.set(key, b"old", ttl_s=60)
    await case.store.set(key, b"new", ttl_s=60)
    assert await case.store.get(key) == b"new"


async def test_an_unknown_key_misses(case: StoreCase) -> None:
    assert await case.store.get(case.key()) is None


async def test_an_entry_expires_after_its_ttl(case: StoreCase) -> None:
    key = case.key()
    await case.store.set(key, b"short-lived", ttl_s=0.2)
    assert await case.store.get(key) == b"short-lived"
    await case.advance(0.3)
    assert await case.store.get(key) is None


async def test_an_entry_over_the_limit_is_not_stored(case: StoreCase) -> None:
    at_limit, over_limit = case.key(), case.key()
    await case.store.set(at_limit, b"x" * MAX_ENTRY_BYTES, ttl_s=60)
    await case.store.set(over_limit, b"x" * (MAX_ENTRY_BYTES + 1), ttl_s=60)
    assert await case.store.get(at_limit) == b"x" * MAX_ENTRY_BYTES
    assert await case.store.get(over_limit) is None


async def test_memory_expired_entries_are_dropped() -> None:
    clock = FakeClock()
    store = MemoryCacheStore(1_000, 100, clock=clock)
    await store.set("k", b"value", ttl_s=1)
    clock.now += 1
    assert await store.get("k") is None
    assert len(store) == 0


async def test_memory_counts_keys_and_values() -> None:
    store = MemoryCacheStore(len("key") + 3 + len("other") + 1, 100)  # room for exactly the two below
    await store.set("key", b"12345", ttl_s=60)
    await store.set("key", b"123", ttl_s=60)  # replaces the 5 bytes: they no longer count
    await store.set("other", b"1", ttl_s=60)
    assert (await store.get("key"), await store.get("other")) == (b"123", b"1")
    await store.set("x", b"", ttl_s=60)  # one byte more: the least recently used entry goes
    assert (await store.get("key"), await store.get("other"), len(store)) == (None, b"1", 2)


async def test_memory_evicts_the_least_recently_used_until_the_new_entry_fits() -> None:
    store = MemoryCacheStore(30, 100)  # each entry below is 10 bytes: three fit
    for key in ("k1", "k2", "k3"):
        await store.set(key, b"v" * 8, ttl_s=60)
    await store.set("k4", b"v" * 18, ttl_s=60)  # 20 bytes: k1 and k2 must go
    assert await store.get("k1") is None
    assert await store.get("k2") is None
    assert await store.get("k3") == b"v" * 8
    assert await store.get("k4") == b"v" * 18
    await store.set("k5", b"v" * 8, ttl_s=60)  # the store is full: k3, the least recently used, goes
    assert (await store.get("k3"), await store.get("k4"), len(store)) == (None, b"v" * 18, 2)


async def test_memory_get_refreshes_recency() -> None:
    store = MemoryCacheStore(30, 100)
    for key in ("k1", "k2", "k3"):
        await store.set(key, b"v" * 8, ttl_s=60)
    assert await store.get("k1") is not None
    await store.set("k4", b"v" * 8, ttl_s=60)
    assert await store.get("k2") is None
    assert await store.get("k1") == b"v" * 8
    assert await store.get("k3") == b"v" * 8
    assert await store.get("k4") == b"v" * 8


async def test_memory_an_entry_larger_than_the_whole_store_evicts_nothing() -> None:
    store = MemoryCacheStore(20, 100)
    await store.set("k1", b"v" * 8, ttl_s=60)
    await store.set("k2", b"v" * 30, ttl_s=60)
    assert await store.get("k1") == b"v" * 8
    assert await store.get("k2") is None


def test_memory_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        MemoryCacheStore(0, 10)


async def test_redis_rejects_a_decoding_client() -> None:
    client = aioredis.Redis.from_url(require_redis(), decode_responses=True)
    key = f"llmapi-test:cache:{uuid.uuid4().hex}"
    try:
        store = RedisCacheStore(client, MAX_ENTRY_BYTES)
        await store.set(key, b"value", ttl_s=60)
        with pytest.raises(TypeError, match="decode_responses=False"):
            await store.get(key)
    finally:
        await client.delete(key)
        await client.aclose()


async def test_redis_a_tiny_ttl_still_sets_an_expiry() -> None:
    client = aioredis.Redis.from_url(require_redis())
    key = f"llmapi-test:cache:{uuid.uuid4().hex}"
    try:
        await RedisCacheStore(client, MAX_ENTRY_BYTES).set(key, b"value", ttl_s=0.0001)
        await asyncio.sleep(0.05)
        assert await client.get(key) is None
    finally:
        await client.delete(key)
        await client.aclose()
