"""An upstream's event stream as the client gets it: `model` renamed, the usage chunk the client did not ask
for dropped, usage counted; only the events metering needs are parsed, the rest renamed in their bytes."""

from __future__ import annotations

import orjson
import pytest

from llmapi.backends.base import Counts, StreamTally
from llmapi.backends.remote.passthrough import EventStream, request_body
from llmapi.backends.remote.upstream_errors import UpstreamErrors
from llmapi.errors import APIError

ERRORS = UpstreamErrors(model="public", upstream_model="up", origin="http://u", timeout=1, connect_timeout=1)


def stream(*, include_usage: bool = False) -> tuple[EventStream, StreamTally]:
    tally = StreamTally()
    events = EventStream(
        model="public", upstream_model="up", include_usage=include_usage, errors=ERRORS, tally=tally
    )
    return events, tally


def sse(*payloads: bytes) -> bytes:
    return b"".join(b"data: " + p + b"\n\n" for p in payloads)


CHUNK = orjson.dumps(
    {
        "id": "c1",
        "model": "up",
        "choices": [{"index": 0, "delta": {"content": '"model":"up"'}}],
        "x_vendor": 1,
    }
)
USAGE = orjson.dumps(
    {"id": "c1", "model": "up", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
)


def test_a_compact_chunk_keeps_its_bytes_but_the_model_name() -> None:
    events, tally = stream()
    [out] = events.feed(sse(CHUNK))

    assert out == CHUNK.replace(b'"model":"up"', b'"model":"public"')
    assert orjson.loads(out)["choices"][0]["delta"]["content"] == '"model":"up"'  # text is text
    assert tally.pieces == 1


def test_a_spaced_chunk_is_read_and_renamed() -> None:
    events, _ = stream()
    [out] = events.feed(sse(b'{"model": "up", "choices": [{"index": 0, "delta": {"content": "x"}}]}'))

    assert orjson.loads(out) == {"model": "public", "choices": [{"index": 0, "delta": {"content": "x"}}]}


@pytest.mark.parametrize("include_usage", [False, True])
def test_usage_is_counted_and_its_chunk_goes_only_to_who_asked(include_usage: bool) -> None:
    events, tally = stream(include_usage=include_usage)
    out = events.feed(sse(CHUNK, USAGE, b"[DONE]"))

    assert len(out) == (2 if include_usage else 1)
    assert tally.counts == Counts(3, 2) and events.done


def test_an_error_event_is_raised() -> None:
    events, _ = stream()
    with pytest.raises(APIError, match="boom"):
        events.feed(sse(b'{"error":{"message":"boom","code":500}}'))


def test_a_responses_stream_ends_at_its_last_event_with_its_usage() -> None:
    events, tally = stream(include_usage=True)
    completed = {
        "type": "response.completed",
        "response": {"model": "up", "usage": {"input_tokens": 4, "output_tokens": 6}},
    }
    out = events.feed(sse(b'{"type":"response.output_text.delta","delta":"hi"}', orjson.dumps(completed)))

    assert events.done and tally.counts == Counts(4, 6)
    assert orjson.loads(out[-1])["response"]["model"] == "public"


def test_a_stream_asks_for_usage_only_where_it_must() -> None:
    chat = orjson.loads(
        request_body(
            {"model": "public", "stream": True}, path="chat/completions", upstream_model="up", stream=True
        )
    )
    responses = orjson.loads(
        request_body({"model": "public", "stream": True}, path="responses", upstream_model="up", stream=True)
    )

    assert chat == {"model": "up", "stream": True, "stream_options": {"include_usage": True}}
    assert responses == {"model": "up", "stream": True}
