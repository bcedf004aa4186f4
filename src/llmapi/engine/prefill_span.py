from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True, slots=True)
class PrefillSpan:
    """Where one prompt chunk sits in a packed forward pass, and what it attends to.

    A chunk that starts a prompt attends causally within itself. A later chunk reads its slot's cached keys
    up to its own end through `mask` ([length, cache_start + length], True where a key may be attended).
    """

    start: int  # first token of the chunk within the packed tokens
    length: int
    slot: int
    cache_start: int  # position of the chunk's first token in its sequence
    mask: torch.Tensor | None

    @classmethod
    def build(cls, *, start: int, length: int, slot: int, cache_start: int) -> PrefillSpan:
        mask = None
        if cache_start:
            keys = cache_start + length
            mask = torch.ones((length, keys), dtype=torch.bool).tril_(diagonal=cache_start)
        return cls(start=start, length=length, slot=slot, cache_start=cache_start, mask=mask)
