from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

# Prompt tokens decoded along with the output, so tokenizers that mark word starts (SentencePiece's
# leading space) render the first generated token the way it reads in context.
_CONTEXT_TOKENS = 5


class TokenDecoder(Protocol):
    """The one tokenizer method the engine uses (Hugging Face tokenizers have it)."""

    def decode(self, token_ids: Sequence[int], *, skip_special_tokens: bool = ...) -> str: ...


class IncrementalDetokenizer:
    """Turns a growing list of token ids into text deltas.

    Decodes a short window of recent tokens and emits what the newest token added, holding back while the
    text ends in an incomplete UTF-8 character (decoded as U+FFFD).
    """

    def __init__(self, decoder: TokenDecoder, prompt_token_ids: Sequence[int]) -> None:
        self._decoder = decoder
        self._token_ids: list[int] = list(prompt_token_ids[-_CONTEXT_TOKENS:])
        self._prefix_offset = 0
        self._read_offset = len(self._token_ids)

    def push(self, token_id: int) -> str:
        """Add a token; return the new text it completes (possibly empty)."""
        self._token_ids.append(token_id)
        prefix_text = self._decode(self._token_ids[self._prefix_offset : self._read_offset])
        new_text = self._decode(self._token_ids[self._prefix_offset :])
        if len(new_text) <= len(prefix_text) or new_text.endswith("\ufffd"):
            return ""
        self._prefix_offset = self._read_offset
        self._read_offset = len(self._token_ids)
        return new_text[len(prefix_text) :]

    def flush(self) -> str:
        """The text still held back (an incomplete character at the end), for when generation ends."""
        prefix_text = self._decode(self._token_ids[self._prefix_offset : self._read_offset])
        new_text = self._decode(self._token_ids[self._prefix_offset :])
        self._prefix_offset = self._read_offset = len(self._token_ids)
        return new_text[len(prefix_text) :] if new_text.startswith(prefix_text) else ""

    def _decode(self, token_ids: list[int]) -> str:
        return self._decoder.decode(token_ids, skip_special_tokens=True)
