from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SampledLogprobs:
    """What the sampler found for one row: the sampled token's log probability, and the likeliest tokens'
    ids and log probabilities, best first."""

    logprob: float
    top_ids: tuple[int, ...] = ()
    top_logprobs: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class TopLogprob:
    """One of the likeliest tokens at a position: its text (a piece of a character: that piece's bytes as
    `\\xNN` escapes), its UTF-8 bytes and its log probability."""

    token_id: int
    token: str
    token_bytes: tuple[int, ...]
    logprob: float


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """A generated token's log probability, where its text starts in the completion (characters), and the
    likeliest tokens at its position, best first (as many as asked, fewer where the rest are impossible)."""

    token_id: int
    token: str
    token_bytes: tuple[int, ...]
    logprob: float
    offset: int
    top: tuple[TopLogprob, ...] = ()
