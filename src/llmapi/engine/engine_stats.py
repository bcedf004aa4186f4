from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EngineStats:
    """How many requests an engine is decoding now, how many wait for a batch slot, and the memory its KV
    cache holds (None where the engine runs in another process)."""

    running: int
    waiting: int
    kv_cache_bytes: int | None = None
