from __future__ import annotations

from typing import Protocol


class StepObserver(Protocol):
    """Told about every engine step, from the engine thread; must return quickly and never raise."""

    def on_step(
        self, *, batch_size: int, decode_tokens: int, prefill_tokens: int, seconds: float
    ) -> None: ...
