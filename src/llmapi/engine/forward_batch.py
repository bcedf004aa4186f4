from __future__ import annotations

from dataclasses import dataclass

import torch

from llmapi.engine.kv_cache import KVCache
from llmapi.engine.prefill_span import PrefillSpan


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
