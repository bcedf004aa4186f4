from __future__ import annotations

from collections.abc import Sequence as TokenIds

import pytest

from llmapi.engine.incremental_detokenizer import IncrementalDetokenizer
from llmapi.engine.sampling_params import SamplingParams
from llmapi.engine.sequence import Sequence, SequenceStatus

EOS = 0
PIECES = {0: "<eos>", 1: "Hel", 2: "lo", 3: " wor", 4: "ld", 5: "!", 6: "#", 7: "#", 8: "END", 9: "x"}


class PieceDecoder:
    """Each id is a fixed piece of text; EOS is special (skipped)."""

    def decode(self, token_ids: TokenIds[int], *, skip_special_tokens: bool = False) -> str:
        return "".join(PIECES[t] for t in token_ids if not (skip_special_tokens and t == EOS))


def make(params: SamplingParams) -> Sequence:
    return Sequence("r", [9], params, decoder=PieceDecoder(), eos_token_id=EOS)


def feed(seq: Sequence, token_ids: list[int]) -> list[tuple[str, str | None]]:
    return [(o.text, o.finish_reason) for o in (seq.append_token(t) for t in token_ids)]


def test_streams_each_token_as_text() -> None:
    seq = make(SamplingParams(max_tokens=10))
    assert feed(seq, [1, 2, 3]) == [("Hel", None), ("lo", None), (" wor", None)]
    assert seq.text == "Hello wor"


def test_max_tokens_finishes_with_length() -> None:
    seq = make(SamplingParams(max_tokens=2))
    assert feed(seq, [1, 2]) == [("Hel", None), ("lo", "length")]
    assert seq.status is SequenceStatus.FINISHED


def test_eos_finishes_with_stop_unless_ignored() -> None:
    seq = make(SamplingParams(max_tokens=5))
    assert feed(seq, [1, EOS]) == [("Hel", None), ("", "stop")]
    ignoring = make(SamplingParams(max_tokens=3, ignore_eos=True))
    assert feed(ignoring, [1, EOS, 2]) == [("Hel", None), ("", None), ("lo", "length")]


def test_stop_string_spanning_two_tokens_is_cut_and_text_before_it_streams() -> None:
    seq = make(SamplingParams(max_tokens=10, stop=("lo wo",)))
    # "l" could start "lo wo", so it waits; then "lo" waits; " wor" completes the stop string.
    assert feed(seq, [1, 2, 3]) == [("He", None), ("l", None), ("", "stop")]
    assert seq.text == "Hel"


def test_held_back_text_is_released_when_the_stop_string_does_not_follow() -> None:
    seq = make(SamplingParams(max_tokens=10, stop=("##END",)))
    assert feed(seq, [1, 6, 7, 5]) == [("Hel", None), ("", None), ("", None), ("##!", None)]
    assert feed(seq, [6, 7, 8]) == [("", None), ("", None), ("", "stop")]
    assert seq.text == "Hel##!"


def test_held_back_text_is_flushed_when_max_tokens_ends_the_sequence() -> None:
    seq = make(SamplingParams(max_tokens=2, stop=("##END",)))
    assert feed(seq, [1, 6]) == [("Hel", None), ("#", "length")]


def test_the_earliest_stop_string_wins() -> None:
    seq = make(SamplingParams(max_tokens=10, stop=("wor", "lo w")))
    assert feed(seq, [1, 2, 3]) == [("He", None), ("l", None), ("", "stop")]
    assert seq.text == "Hel"


class ByteDecoder:
    """Ids are bytes; an incomplete UTF-8 character decodes to U+FFFD, as byte-level BPE tokenizers do."""

    def decode(self, token_ids: TokenIds[int], *, skip_special_tokens: bool = False) -> str:
        return bytes(token_ids).decode("utf-8", errors="replace")


def test_detokenizer_holds_back_an_incomplete_utf8_character() -> None:
    detokenizer = IncrementalDetokenizer(ByteDecoder(), list(b"ab"))
    euro = list("€".encode())
    assert [detokenizer.push(b) for b in [*euro, ord("!")]] == ["", "", "€", "!"]


def test_detokenizer_flush_releases_a_dangling_partial_character() -> None:
    detokenizer = IncrementalDetokenizer(ByteDecoder(), list(b"a"))
    assert detokenizer.push("€".encode()[0]) == ""
    assert detokenizer.flush() == "\ufffd"


def test_an_empty_prompt_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one prompt token"):
        Sequence("r", [], SamplingParams(), decoder=PieceDecoder(), eos_token_id=EOS)
