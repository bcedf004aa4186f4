"""Server-sent events as the Responses API sends them: `event: {type}` then `data: {json}` for each event,
and no `[DONE]`. A failure after the stream started ends it with an `error` event, numbered next. Events
come as models, or as JSON bytes passed through from an upstream."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import aclosing

import orjson
from starlette.responses import StreamingResponse

from llmapi.errors import APIError
from llmapi.protocol.response_events import ErrorEvent, ResponseEvent

logger = logging.getLogger(__name__)


def _encoded(event: ResponseEvent | list[bytes]) -> tuple[bytes, int]:
    """The event as sent (or the events that arrived together, passed through, in one write), and the last
    sequence number."""
    if isinstance(event, list):
        framed, number = [], -1
        for payload in event:
            data = orjson.loads(payload)
            kind, number = data.get("type"), data.get("sequence_number", number)
            name = kind.encode() if isinstance(kind, str) else b"message"
            framed.append(b"event: " + name + b"\ndata: " + payload + b"\n\n")
        return b"".join(framed), number if isinstance(number, int) else -1
    data = event.model_dump_json().encode()
    return b"event: " + event.type.encode() + b"\ndata: " + data + b"\n\n", event.sequence_number


async def named_event_response(
    events: AsyncIterator[ResponseEvent] | AsyncIterator[list[bytes]],
) -> StreamingResponse:
    """Starts the stream only once the first event exists, so errors found before it keep their status."""
    try:
        first: ResponseEvent | list[bytes] | None = await anext(events)
    except StopAsyncIteration:
        first = None
    except BaseException:
        await events.aclose()  # type: ignore[union-attr]
        raise

    async def body() -> AsyncIterator[bytes]:
        last = -1
        async with aclosing(events):  # type: ignore[type-var]
            try:
                if first is not None:
                    encoded, last = _encoded(first)
                    yield encoded
                    async for event in events:
                        encoded, last = _encoded(event)
                        yield encoded
            except APIError as exc:
                error = ErrorEvent(
                    sequence_number=last + 1, code=exc.code, message=exc.message, param=exc.param
                )
                yield _encoded(error)[0]
            except Exception:
                logger.exception("stream failed")
                message = "The server failed while streaming; see its log."
                error = ErrorEvent(
                    sequence_number=last + 1, code="internal_error", message=message, param=None
                )
                yield _encoded(error)[0]

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )
