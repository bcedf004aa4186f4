"""The one thing a cache store does: bytes in under a key for a while, bytes out."""

from __future__ import annotations

from typing import Protocol


class CacheStore(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store `value` for `ttl_s` seconds; a value over the store's entry limit is not stored."""
        ...

    async def close(self) -> None: ...
