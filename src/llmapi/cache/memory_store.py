"""An in-process cache store: least recently used entries go first, bounded in total bytes."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple


class _Entry(NamedTuple):
    value: bytes
    expires_at: float


class MemoryCacheStore:
    """An LRU of `max_bytes` in all (keys and values); an entry expires after its TTL."""

    def __init__(
        self, max_bytes: int, max_entry_bytes: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_bytes <= 0 or max_entry_bytes <= 0:
            raise ValueError(
                f"max_bytes ({max_bytes}) and max_entry_bytes ({max_entry_bytes}) must be positive"
            )
        self._max_bytes = max_bytes
        self._max_entry_bytes = max_entry_bytes
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._size_bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.value

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        size = len(key) + len(value)
        if len(value) > self._max_entry_bytes or size > self._max_bytes:
            return
        if key in self._entries:
            self._drop(key)
        while self._size_bytes + size > self._max_bytes:
            self._drop(next(iter(self._entries)))
        self._entries[key] = _Entry(value, self._clock() + ttl_s)
        self._size_bytes += size

    async def close(self) -> None:
        self._entries.clear()
        self._size_bytes = 0

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key)
        self._size_bytes -= len(key) + len(entry.value)
