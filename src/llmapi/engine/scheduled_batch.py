from __future__ import annotations

from dataclasses import dataclass

from llmapi.engine.sequence import Sequence


@dataclass(frozen=True, slots=True)
class PrefillChunk:
    """Prompt tokens [start, start + length) of one sequence, prefilled in one step.

    The chunk attends to the sequence's cached tokens before `start` and causally within itself. Only the
    chunk that ends the prompt yields logits: the sequence samples its first token from them.
    """

    seq: Sequence
    start: int
    length: int

    @property
    def completes_prompt(self) -> bool:
        return self.start + self.length == self.seq.num_prompt_tokens

    @property
    def token_ids(self) -> list[int]:
        return self.seq.prompt_token_ids[self.start : self.start + self.length]


@dataclass(frozen=True, slots=True)
class PrefixCopy:
    """Copy the keys and values of the first `length` positions of slot `source` into slot `target`, before
    the step's forward pass (in the order listed: a later copy may read a slot an earlier one wrote)."""

    source: int
    target: int
    length: int


@dataclass(frozen=True, slots=True)
class ScheduledBatch:
    """The work of one engine step: cached prefixes to copy, sequences decoding one token, and prompt chunks
    being prefilled."""

    decode: tuple[Sequence, ...]
    prefill: tuple[PrefillChunk, ...]
    prefix_copies: tuple[PrefixCopy, ...] = ()

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
