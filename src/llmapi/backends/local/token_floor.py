"""The fewest tokens a text can become, told from its length alone: a prompt that cannot fit a model's
context is refused before the tokenizer spends time on it (700,000 characters keep it busy for about a
second).

The bound: no token of the vocabulary stands for more than K characters of input, so a text of C characters
is at least ceil(C / K) tokens. It holds only where every step of the tokenizer keeps every character:
a normalizer that composes or strips characters, a pre-tokenizer that drops whitespace, a model that makes
one unknown token of any number of characters, or an added token that swallows the whitespace beside it
would each break it. For such tokenizers (and slow ones, whose pipeline cannot be read) there is no floor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Normalizers that never make a text shorter, in code points (decompositions map one to one or more).
_LENGTHENING_NORMALIZERS = frozenset({"Prepend", "NFD", "NFKD", "Lowercase", "ByteLevel"})
# Pre-tokenizers that split a text without dropping any of it (unless told to remove what they split on).
_KEEPING_PRE_TOKENIZERS = frozenset(
    {"ByteLevel", "Metaspace", "Digits", "UnicodeScripts", "Split", "Punctuation"}
)


@dataclass(frozen=True, slots=True)
class TokenFloor:
    chars_per_token: int | None
    """The most characters of input one token can stand for; None where no such bound holds."""

    @classmethod
    def of(cls, tokenizer: Any) -> TokenFloor:
        """The floor of a Hugging Face tokenizer, from its vocabulary and pipeline (once, at load)."""
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None:
            return cls(None)
        pipeline: dict[str, Any] = json.loads(backend.to_str())
        if not (
            _lengthens(pipeline.get("normalizer"))
            and _keeps_every_character(pipeline.get("pre_tokenizer"))
            and _unknowns_are_short(pipeline.get("model") or {})
            and not any(t.get("lstrip") or t.get("rstrip") for t in pipeline.get("added_tokens") or [])
        ):
            return cls(None)
        return cls(max(1, max((len(token) for token in tokenizer.get_vocab()), default=1)))

    def tokens_at_least(self, text: str) -> int:
        """The fewest tokens `text` can become (0 where nothing is known)."""
        if self.chars_per_token is None:
            return 0
        return -(-len(text) // self.chars_per_token)


def _lengthens(normalizer: dict[str, Any] | None) -> bool:
    if normalizer is None:
        return True
    kind = normalizer.get("type")
    if kind == "Sequence":
        return all(_lengthens(step) for step in normalizer.get("normalizers", []))
    if kind == "Replace":
        pattern = normalizer.get("pattern") or {}
        replaced = pattern.get("String")
        return isinstance(replaced, str) and 0 < len(replaced) <= len(normalizer.get("content", ""))
    return kind in _LENGTHENING_NORMALIZERS


def _keeps_every_character(pre_tokenizer: dict[str, Any] | None) -> bool:
    if pre_tokenizer is None:
        return True
    kind = pre_tokenizer.get("type")
    if kind == "Sequence":
        return all(_keeps_every_character(step) for step in pre_tokenizer.get("pretokenizers", []))
    return kind in _KEEPING_PRE_TOKENIZERS and pre_tokenizer.get("behavior") != "Removed"


def _unknowns_are_short(model: dict[str, Any]) -> bool:
    """BPE makes one unknown token per unknown character unless it fuses them; Unigram fuses them unless
    it falls back to bytes; WordPiece and WordLevel make one unknown token of a whole word."""
    kind = model.get("type")
    if kind == "BPE":
        return model.get("unk_token") is None or not model.get("fuse_unk")
    if kind == "Unigram":
        return bool(model.get("byte_fallback"))
    return False
