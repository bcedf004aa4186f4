from __future__ import annotations

import re
from typing import Any

from llmapi.engine.incremental_detokenizer import TokenDecoder

_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")


class TokenTexts:
    """Each token's text and UTF-8 bytes as logprobs show them, decoded once per token id.

    A token that decodes to a piece of a character (byte-level BPE splits some characters over several
    tokens) has its bytes read from the tokenizer's vocabulary: the byte-level alphabet, or SentencePiece's
    `<0xNN>` byte tokens. Its text is then those bytes, the incomplete ones written as `\\xNN` (as OpenAI
    writes them).
    """

    def __init__(self, tokenizer: TokenDecoder) -> None:
        self._tokenizer: Any = tokenizer
        self._known: dict[int, tuple[str, tuple[int, ...]]] = {}

    def __call__(self, token_id: int) -> tuple[str, tuple[int, ...]]:
        known = self._known.get(token_id)
        if known is None:
            known = self._known[token_id] = self._decode(token_id)
        return known

    def _decode(self, token_id: int) -> tuple[str, tuple[int, ...]]:
        text: str = self._tokenizer.decode([token_id], skip_special_tokens=False)
        if "\ufffd" not in text:
            return text, tuple(text.encode())
        raw = self._vocabulary_bytes(token_id)
        if raw is None:
            return text, tuple(text.encode())
        return raw.decode("utf-8", errors="backslashreplace"), tuple(raw)

    def _vocabulary_bytes(self, token_id: int) -> bytes | None:
        to_piece = getattr(self._tokenizer, "convert_ids_to_tokens", None)
        piece = to_piece(token_id) if to_piece is not None else None
        if not isinstance(piece, str):
            return None
        if match := _BYTE_TOKEN.fullmatch(piece):
            return bytes([int(match.group(1), 16)])
        if piece and all(char in _BYTE_LEVEL for char in piece):
            return bytes(_BYTE_LEVEL[char] for char in piece)
        return None


def _byte_level_alphabet() -> dict[str, int]:
    """GPT-2's byte-level BPE writes each byte as one printable character: this maps them back."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars = {byte: chr(byte) for byte in printable}
    shifted = 0
    for byte in range(256):
        if byte not in chars:
            chars[byte] = chr(256 + shifted)
            shifted += 1
    return {char: byte for byte, char in chars.items()}


_BYTE_LEVEL = _byte_level_alphabet()
