from __future__ import annotations

from typing import Any

from llmapi.engine.token_texts import TokenTexts


def test_a_whole_token_is_its_decoded_text_and_utf8_bytes(tokenizer: Any) -> None:
    texts = TokenTexts(tokenizer)
    for token_id in tokenizer.encode(" return text"):
        text, raw = texts(token_id)
        assert text == tokenizer.decode([token_id])
        assert bytes(raw) == text.encode()


def test_the_pieces_of_a_character_carry_their_bytes_which_join_into_it(tokenizer: Any) -> None:
    texts = TokenTexts(tokenizer)
    pieces = [texts(t) for t in tokenizer.encode("€")]
    assert len(pieces) > 1  # the tokenizer has no token for the whole character
    assert b"".join(bytes(raw) for _, raw in pieces).decode() == "€"
    assert pieces[0][0] == "\\xe2"


def test_a_special_token_is_named(tokenizer: Any) -> None:
    assert TokenTexts(tokenizer)(tokenizer.eos_token_id) == ("<|endoftext|>", tuple(b"<|endoftext|>"))
