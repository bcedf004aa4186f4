"""A cache store shared by every replica: one Redis string per entry, expiring with PX. The reads and writes
of one loop turn share a round trip (`RedisBatch`)."""

from __future__ import annotations

import redis.asyncio as aioredis

from llmapi.redis_batch import RedisBatch


class RedisCacheStore:
    """GET and SET PX on a client the caller owns; Redis errors propagate to the caller's breaker."""

    def __init__(self, client: aioredis.Redis, max_entry_bytes: int) -> None:
        if max_entry_bytes <= 0:
            raise ValueError(f"max_entry_bytes ({max_entry_bytes}) must be positive")
        self._batch = RedisBatch(client)
        self._max_entry_bytes = max_entry_bytes

    async def get(self, key: str) -> bytes | None:
        value = await self._batch.command("GET", key)
        if value is not None and not isinstance(value, bytes):
            raise TypeError("RedisCacheStore needs a client made with decode_responses=False")
        return value

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        if len(value) > self._max_entry_bytes:
            return
        await self._batch.command("SET", key, value, "PX", max(1, round(ttl_s * 1000)))

    async def close(self) -> None:
        """The caller owns the client and closes it."""
