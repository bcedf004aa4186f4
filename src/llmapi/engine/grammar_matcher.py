from __future__ import annotations

import llguidance
import torch


class GrammarMatcher:
    """One sequence's place in its grammar: which tokens may come next, and whether the output is complete."""

    __slots__ = ("_matcher", "vocab_size")

    def __init__(self, matcher: llguidance.LLMatcher, *, vocab_size: int) -> None:
        self._matcher = matcher
        self.vocab_size = vocab_size
        """The tokenizer's size as the grammar engine knows it; a row of the bitmask covers this many."""

    @property
    def llmatcher(self) -> llguidance.LLMatcher:
        return self._matcher

    @property
    def is_finished(self) -> bool:
        """Nothing more may be added (the grammar is complete, end-of-text was accepted, or an error)."""
        return bool(self._matcher.is_stopped() or self._matcher.is_error())

    @property
    def error(self) -> str | None:
        return self._matcher.get_error() if self._matcher.is_error() else None

    def fill(self, bitmask: torch.Tensor, row: int) -> None:
        """Write the allowed next tokens as bits into `bitmask[row]` (int32, ceil(vocab_size / 32) words)."""
        target = bitmask[row]
        self._matcher.unsafe_compute_mask_ptr(target.data_ptr(), target.numel() * target.element_size())

    def accept(self, token_id: int) -> bool:
        """Advance past a sampled token; False if the grammar does not allow it (the matcher then stops)."""
        return bool(self._matcher.consume_token(token_id))
