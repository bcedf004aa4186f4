from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How one sequence is sampled. Validated on construction (ValueError); the engine trusts it afterwards.

    Wire schemas check the same ranges, so a client never reaches these errors: one here is a bug upstream.
    """

    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    stop: tuple[str, ...] = field(default_factory=tuple)
    ignore_eos: bool = False

    def __post_init__(self) -> None:
        _require(self.max_tokens >= 1, "max_tokens must be at least 1")
        _require(0.0 <= self.temperature <= 2.0, "temperature must be between 0 and 2")
        _require(0.0 < self.top_p <= 1.0, "top_p must be greater than 0 and at most 1")
        _require(self.top_k >= 0, "top_k must be 0 (off) or a positive number of tokens")
        for name in ("presence_penalty", "frequency_penalty"):
            _require(-2.0 <= getattr(self, name) <= 2.0, f"{name} must be between -2 and 2")
        _require(all(self.stop), "stop sequences must not be empty strings")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0 or self.top_k == 1


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)
