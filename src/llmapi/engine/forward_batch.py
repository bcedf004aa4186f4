from __future__ import annotations

from dataclasses import dataclass

import torch

from llmapi.engine.kv_cache import KVCache


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


@dataclass(frozen=True, slots=True)
class ForwardBatch:
    """What the slot attention needs to know about one packed forward pass.

    The tokens of the pass sit in one row: first one token per decoding sequence, then a chunk of the prompt
    of each sequence being prefilled. Every token has a KV cache slot and a position.
    """

    cache: KVCache
    token_slots: torch.Tensor  # [tokens] slot of each token
    token_positions: torch.Tensor  # [tokens] position of each token in its sequence
    num_decode: int
    decode_slots: torch.Tensor  # [num_decode]
    decode_rows: int  # cache rows the decode attention reads: highest decode slot + 1
    decode_rows_in_order: bool  # decode_slots == 0, 1, ..., num_decode - 1: no scatter/gather needed
    decode_mask: torch.Tensor  # [decode_rows, 1, 1, decode_length], True where a key may be attended
    prefill_spans: tuple[PrefillSpan, ...]

    @property
    def decode_length(self) -> int:
        return int(self.decode_mask.shape[-1])
