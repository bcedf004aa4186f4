"""A request's body, read only once its caller is known: bounded in size while it arrives, then decoded
from JSON, XML or Protobuf and validated into the route's request model. Large bodies are decoded and
validated in a worker thread, so that no request holds the event loop while its body is parsed."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from fastapi.exceptions import RequestValidationError
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope

from llmapi.errors import InvalidBodyError, PayloadTooLargeError, UnsupportedMediaTypeError
from llmapi.serialization.codec import Codec, CodecError
from llmapi.serialization.negotiation import JSON, PROTOBUF, SUPPORTED, request_format

# Up to this many bytes, decoding takes a few milliseconds at most whatever the body holds (measured on the
# costliest shapes: under 1 ms for JSON and XML, about 4 ms for Protobuf); larger bodies are decoded off the
# event loop, for a thread hop of about 0.1 ms.
OFF_LOOP_BYTES = 2 << 10


class BodyField(Protocol):
    """What is used of FastAPI's body field: its validation, errors in FastAPI's own shape."""

    def validate(self, value: Any, values: dict[str, Any], *, loc: tuple[str, ...]) -> tuple[Any, Any]: ...


class DecodedRequest(Request):
    """A request whose body FastAPI reads as the request model validated already (FastAPI passes a model
    instance through its own validation as it is). `document` is the body in its JSON form, as sent."""

    def __init__(self, scope: Scope, receive: Receive, *, body: bytes, document: Any, model: Any) -> None:
        super().__init__(scope, receive)
        self._raw_body = body
        self._model = model
        self.document = document

    async def body(self) -> bytes:
        return self._raw_body

    async def json(self) -> Any:
        return self._model


class BodyDecoder:
    """Decodes large bodies one at a time on a thread of its own: decoding holds the interpreter lock, so
    more threads would only take turns with the event loop for it, and the loop would wait longer."""

    def __init__(self, *, codecs: Mapping[str, Codec], max_body_bytes: int) -> None:
        self.codecs = codecs
        self.max_body_bytes = max_body_bytes
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmapi-body")

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)

    async def decode(
        self, request: Request, *, into: BodyField, protobuf_message: str | None
    ) -> DecodedRequest:
        """The request with its body read, decoded and validated `into` the route's body field, or the
        validation error FastAPI would raise. `protobuf_message` None: the route has no Protobuf form."""
        sent_in = request_format(request.headers.get("content-type"))
        if sent_in is None:
            raise UnsupportedMediaTypeError(
                f"Content-Type '{request.headers.get('content-type')}' is not supported; send one of "
                f"{', '.join(SUPPORTED)}."
            )
        if sent_in == PROTOBUF and protobuf_message is None:
            raise UnsupportedMediaTypeError(
                f"{request.method} {request.url.path} has no Protobuf form; send JSON or XML."
            )
        body = await _read(request.receive, request.headers, self.max_body_bytes)
        codec, document, model = self.codecs[sent_in], None, None  # no body: FastAPI says what is missing
        if len(body) > OFF_LOOP_BYTES:
            decode = functools.partial(_decode, codec, body, protobuf_message, into)
            document, model = await asyncio.get_running_loop().run_in_executor(self._thread, decode)
        elif body:
            document, model = _decode(codec, body, protobuf_message, into)
        MutableHeaders(scope=request.scope)["content-type"] = JSON
        return DecodedRequest(request.scope, request.receive, body=body, document=document, model=model)


def _decode(codec: Codec, body: bytes, message: str | None, into: BodyField) -> tuple[Any, Any]:
    try:
        data = codec.decode(body, message=message or "")
    except CodecError as exc:
        if codec.media_type == JSON:
            raise InvalidBodyError(
                f"The request body is not a readable JSON object: {exc}. "
                "Send a JSON object with Content-Type: application/json.",
                code="invalid_json",
            ) from None
        raise InvalidBodyError(f"The {codec.media_type} body cannot be read: {exc}") from None
    model, errors = into.validate(data, {}, loc=("body",))
    if errors:
        raise RequestValidationError(errors, body=data)
    return data, model


async def _read(receive: Receive, headers: Headers, limit: int) -> bytes:
    """The whole body, refused (413) as soon as it is known to be over `limit`: by its Content-Length, or
    by what has arrived. A client gone before the end (or cut off by the server) leaves no body to decode."""
    too_large = PayloadTooLargeError(
        f"The request body is larger than this server's limit of {limit:,} bytes."
    )
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)
