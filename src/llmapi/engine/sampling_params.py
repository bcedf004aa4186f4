from __future__ import annotations

from dataclasses import dataclass, field

from llmapi.engine.constraint import Constraint


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
    logprobs: int | None = None
    """None: off; k >= 0: the sampled token's log probability and the k likeliest alternatives."""
    logit_bias: tuple[tuple[int, float], ...] = ()
    """(token id, bias) pairs added to the logits before anything else; -100 and 100 ban and force."""
    stop_token_ids: tuple[int, ...] = ()
    """Tokens that end the sequence like end-of-text does (even with ignore_eos); not part of the text."""
    constraint: Constraint | None = None
    """What the output must match (constrained decoding); it ends, "stop", where the grammar is complete."""

    def __post_init__(self) -> None:
        _require(self.max_tokens >= 1, "max_tokens must be at least 1")
        _require(0.0 <= self.temperature <= 2.0, "temperature must be between 0 and 2")
        _require(0.0 < self.top_p <= 1.0, "top_p must be greater than 0 and at most 1")
        _require(self.top_k >= 0, "top_k must be 0 (off) or a positive number of tokens")
        for name in ("presence_penalty", "frequency_penalty"):
            _require(-2.0 <= getattr(self, name) <= 2.0, f"{name} must be between -2 and 2")
        _require(all(self.stop), "stop sequences must not be empty strings")
        _require(self.logprobs is None or self.logprobs >= 0, "logprobs must be None or at least 0")
        _require(
            all(t >= 0 and -100.0 <= b <= 100.0 for t, b in self.logit_bias),
            "logit_bias needs token ids of at least 0 and biases between -100 and 100",
        )
        _require(all(t >= 0 for t in self.stop_token_ids), "stop token ids must be at least 0")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0 or self.top_k == 1


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)
