from __future__ import annotations

from dataclasses import dataclass

from llmapi.engine.sequence import Sequence


@dataclass(frozen=True, slots=True)
class ScheduledBatch:
    """The sequences of one engine step: those decoding one token, and those whose prompt is prefilled."""

    decode: tuple[Sequence, ...]
    prefill: tuple[Sequence, ...]

    @property
    def sequences(self) -> tuple[Sequence, ...]:
        """Every sequence of the step, in the order the model runner returns their logits."""
        return self.decode + self.prefill

    @property
    def empty(self) -> bool:
        return not self.decode and not self.prefill
