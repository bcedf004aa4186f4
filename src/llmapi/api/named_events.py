"""Server-sent events as the Responses API sends them: `event: {type}` then `data: {json}` for each event,
and no `[DONE]`. A failure after the stream started ends it with an `error` event, numbered next."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import aclosing

from starlette.responses import StreamingResponse

from llmapi.errors import APIError
from llmapi.protocol.response_events import ErrorEvent, ResponseEvent

logger = logging.getLogger(__name__)


def _encoded(event: ResponseEvent) -> bytes:
    return b"event: " + event.type.encode() + b"\ndata: " + event.model_dump_json().encode() + b"\n\n"


async def named_event_response(events: AsyncIterator[ResponseEvent]) -> StreamingResponse:
    """Starts the stream only once the first event exists, so errors found before it keep their status."""
    try:
        first: ResponseEvent | None = await anext(events)
    except StopAsyncIteration:
        first = None
    except BaseException:
        await events.aclose()  # type: ignore[attr-defined]
        raise

    async def body() -> AsyncIterator[bytes]:
        last = -1
        async with aclosing(events):  # type: ignore[type-var]
            try:
                if first is not None:
                    last = first.sequence_number
                    yield _encoded(first)
                    async for event in events:
                        last = event.sequence_number
                        yield _encoded(event)
            except APIError as exc:
                yield _encoded(
                    ErrorEvent(sequence_number=last + 1, code=exc.code, message=exc.message, param=exc.param)
                )
            except Exception:
                logger.exception("stream failed")
                message = "The server failed while streaming; see its log."
                yield _encoded(
                    ErrorEvent(sequence_number=last + 1, code="internal_error", message=message, param=None)
                )

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )
