from __future__ import annotations

from collections.abc import Sequence as TokenIds

import pytest

from llmapi.engine.incremental_detokenizer import IncrementalDetokenizer
from llmapi.engine.sampling_params import SamplingParams
from llmapi.engine.sequence import Sequence, SequenceStatus
from llmapi.engine.token_logprob import SampledLogprobs

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


def lp(token_id: int) -> SampledLogprobs:
    """A made-up logprob that names its token, so a test can see which tokens were reported."""
    return SampledLogprobs(logprob=-float(token_id), top_ids=(token_id, 9), top_logprobs=(-0.1, -0.2))


def feed_logprobs(seq: Sequence, token_ids: list[int]) -> list[tuple[str, list[str]]]:
    outputs = [seq.append_token(t, lp(t)) for t in token_ids]
    return [(o.text, [x.token for x in o.logprobs]) for o in outputs]


def test_a_stop_token_id_ends_the_sequence_without_text_even_when_eos_is_ignored() -> None:
    seq = make(SamplingParams(max_tokens=10, stop_token_ids=(5,), ignore_eos=True))
    assert feed(seq, [1, EOS, 2, 5]) == [("Hel", None), ("", None), ("lo", None), ("", "stop")]
    assert seq.text == "Hello"


def test_each_token_logprob_comes_with_its_text_and_where_it_starts() -> None:
    seq = make(SamplingParams(max_tokens=3, logprobs=1))
    outputs = [seq.append_token(t, lp(t)) for t in [1, 2, 3]]
    assert [(o.text, [(x.token, x.offset, x.logprob) for x in o.logprobs]) for o in outputs] == [
        ("Hel", [("Hel", 0, -1.0)]),
        ("lo", [("lo", 3, -2.0)]),
        (" wor", [(" wor", 5, -3.0)]),
    ]
    top = outputs[0].logprobs[0].top
    assert [(t.token, t.token_bytes, t.logprob) for t in top] == [
        ("Hel", tuple(b"Hel"), -0.1),
        ("x", (120,), -0.2),
    ]


def test_logprobs_wait_with_held_back_text_and_skip_what_a_stop_string_cuts() -> None:
    seq = make(SamplingParams(max_tokens=10, stop=("##END",), logprobs=0))
    assert feed_logprobs(seq, [1, 6, 7, 5]) == [
        ("Hel", ["Hel"]),
        ("", []),
        ("", []),
        ("##!", ["#", "#", "!"]),
    ]
    # "#", "#" and "END" make the stop string: text and logprobs end before it.
    assert feed_logprobs(seq, [6, 7, 8]) == [("", []), ("", []), ("", [])]
    # The end token (eos) itself has no text, and no logprob.
    ended = make(SamplingParams(max_tokens=10, logprobs=0))
    assert feed_logprobs(ended, [1, EOS]) == [("Hel", ["Hel"]), ("", [])]


def test_a_token_a_stop_string_cuts_into_is_reported_whole() -> None:
    seq = make(SamplingParams(max_tokens=10, stop=("lo wo",), logprobs=0))
    assert feed_logprobs(seq, [1, 2, 3]) == [("He", ["Hel"]), ("l", []), ("", [])]


def test_held_back_logprobs_are_released_when_max_tokens_ends_the_sequence() -> None:
    seq = make(SamplingParams(max_tokens=2, stop=("##END",), logprobs=0))
    assert feed_logprobs(seq, [1, 6]) == [("Hel", ["Hel"]), ("#", ["#"])]


class ByteFallbackTokenizer(ByteDecoder):
    """Names its byte tokens as SentencePiece's byte fallback does."""

    def convert_ids_to_tokens(self, token_id: int) -> str:
        return f"<0x{token_id:02X}>"


def test_the_pieces_of_one_character_come_with_the_character_and_their_own_bytes() -> None:
    params = SamplingParams(max_tokens=5, logprobs=0)
    seq = Sequence("r", list(b"a"), params, decoder=ByteFallbackTokenizer(), eos_token_id=None)
    euro = list("€".encode())
    outputs = [seq.append_token(b, SampledLogprobs(-1.0)) for b in [*euro, ord("!")]]
    assert [o.text for o in outputs] == ["", "", "€", "!"]
    assert [[(x.token, x.token_bytes, x.offset) for x in o.logprobs] for o in outputs] == [
        [],
        [],
        [("\\xe2", (0xE2,), 0), ("\\x82", (0x82,), 0), ("\\xac", (0xAC,), 0)],
        [("!", (ord("!"),), 1)],
    ]
