from __future__ import annotations

from dataclasses import dataclass

from llmapi.engine.prefill_chunk import PrefillChunk
from llmapi.engine.sequence import Sequence


@dataclass(frozen=True, slots=True)
class ScheduledBatch:
    """The work of one engine step: sequences decoding one token, and prompt chunks being prefilled."""

    decode: tuple[Sequence, ...]
    prefill: tuple[PrefillChunk, ...]

    @property
    def sequences(self) -> tuple[Sequence, ...]:
        """The sequences that sample a token this step, in the order the model runner returns their logits:
        every decoding sequence, then those whose prompt chunk completes their prompt."""
        return self.decode + tuple(chunk.seq for chunk in self.prefill if chunk.completes_prompt)

    @property
    def num_prefill_tokens(self) -> int:
        return sum(chunk.length for chunk in self.prefill)

    @property
    def empty(self) -> bool:
        return not self.decode and not self.prefill
