from __future__ import annotations

import pytest

from llmapi.backends.remote.sse import SSEDecoder, SSEError

STREAM = (
    ": keep-alive comment\n\n"
    'data: {"a": "wörld ✓"}\n\n'
    "event: message\r\nid: 7\r\ndata: first line\r\ndata: second line\r\n\r\n"
    "retry: 1000\rdata:no space\r\r"
    "data: [DONE]\n\n"
).encode()
EVENTS = [e.encode() for e in ['{"a": "wörld ✓"}', "first line\nsecond line", "no space", "[DONE]"]]


def test_events_whole() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(STREAM) + decoder.flush() == EVENTS


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 13])
def test_events_split_at_every_boundary(size: int) -> None:
    decoder = SSEDecoder()
    events: list[bytes] = []
    for start in range(0, len(STREAM), size):
        events += decoder.feed(STREAM[start : start + size])
    assert events + decoder.flush() == EVENTS


def test_crlf_split_between_reads_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r") == []
    assert decoder.feed(b"\n\r") == [b"a\nb"]
    assert decoder.feed(b"\n") == []
    assert decoder.flush() == []


def test_flush_dispatches_an_unterminated_event() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: [DONE]") == []
    assert decoder.flush() == [b"[DONE]"]


def test_oversized_event_is_refused() -> None:
    decoder = SSEDecoder(max_event_chars=64)
    with pytest.raises(SSEError, match="longer than 64"):
        decoder.feed(b"data: " + b"x" * 100)
    decoder = SSEDecoder(max_event_chars=64)
    with pytest.raises(SSEError, match="longer than 64"):
        decoder.feed(b"data: " + b"x" * 40 + b"\ndata: " + b"y" * 40 + b"\n")


def test_a_character_split_between_reads_arrives_whole() -> None:
    decoder = SSEDecoder()
    encoded = 'data: "wörld ✓"\n\n'.encode()
    cut = encoded.index("ö".encode()) + 1
    assert decoder.feed(encoded[:cut]) + decoder.feed(encoded[cut:]) == ['"wörld ✓"'.encode()]
