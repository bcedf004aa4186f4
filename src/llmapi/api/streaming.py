"""Server-sent events in the OpenAI style: `data: {json}` per chunk, then `data: [DONE]`."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing

from pydantic import BaseModel
from starlette.responses import StreamingResponse

from llmapi.errors import APIError, InternalServerError

logger = logging.getLogger(__name__)

_DONE = b"data: [DONE]\n\n"


def _event(chunk: BaseModel | list[bytes]) -> bytes:
    """One chunk's event, or the events of JSON payloads that arrived together (passed through), in one
    write."""
    if isinstance(chunk, list):
        return b"".join(b"data: " + data + b"\n\n" for data in chunk)
    return b"data: " + chunk.model_dump_json().encode() + b"\n\n"


def _error_event(exc: APIError) -> bytes:
    return b"data: " + json.dumps(exc.body()).encode() + b"\n\n"


async def sse_response(chunks: AsyncIterator[BaseModel] | AsyncIterator[list[bytes]]) -> StreamingResponse:
    """Start the stream only once the first chunk exists, so errors found before it (an unknown model,
    a prompt too long) still get their proper status code. Later errors end the stream with an error event."""
    try:
        first: BaseModel | list[bytes] | None = await anext(chunks)
    except StopAsyncIteration:
        first = None
    except BaseException:
        await chunks.aclose()  # type: ignore[union-attr]
        raise

    async def events() -> AsyncIterator[bytes]:
        async with aclosing(chunks):  # type: ignore[type-var]
            try:
                if first is not None:
                    yield _event(first)
                    async for chunk in chunks:
                        yield _event(chunk)
            except APIError as exc:
                yield _error_event(exc)
            except Exception:
                logger.exception("stream failed")
                yield _error_event(InternalServerError("The server failed while streaming; see its log."))
        yield _DONE

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )
