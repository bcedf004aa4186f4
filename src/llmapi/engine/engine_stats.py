from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EngineStats:
    """How many requests an engine is decoding now, and how many wait for a batch slot."""

    running: int
    waiting: int
