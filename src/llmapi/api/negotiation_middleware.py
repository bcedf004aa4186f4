"""JSON, XML and Protobuf on every `/v1` endpoint, decided in this one place.

On the way in, a request body is read (within the body-size limit), checked (encoding, nesting) and, when it
is XML or Protobuf, turned into the JSON the routes validate, so every format meets the same validation. On
the way out, a JSON response (errors included) is re-encoded in the format `Accept` asked for. Server-sent
event streams stay JSON whatever was asked.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmapi.errors import (
    APIError,
    InvalidBodyError,
    NotAcceptableError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from llmapi.serialization.codec import Codec, CodecError
from llmapi.serialization.json_codec import JSONCodec
from llmapi.serialization.messages import ERROR, Messages, protobuf_messages
from llmapi.serialization.negotiation import JSON, PROTOBUF, SUPPORTED, XML, request_format, response_format
from llmapi.serialization.protobuf_codec import ProtobufCodec
from llmapi.serialization.xml_codec import XMLCodec

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
# OAuth2's token endpoint takes a form (RFC 6749), not a negotiated body.
_FORM_PATHS = frozenset({"/v1/oauth/token"})


class NegotiationMiddleware:
    def __init__(self, app: ASGIApp, *, router: Router, max_body_bytes: int, max_depth: int) -> None:
        self.app = app
        self.router = router
        self.max_body_bytes = max_body_bytes
        self.codecs: Mapping[str, Codec] = {
            JSON: JSONCodec(max_depth=max_depth),
            XML: XMLCodec(max_depth=max_depth),
            PROTOBUF: ProtobufCodec(),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        messages = protobuf_messages(scope["method"], scope["path"])
        answer_in = response_format(headers.get("accept"))
        no_protobuf_form = answer_in == PROTOBUF and messages.response is None and self._routed(scope)
        if answer_in is None or no_protobuf_form:
            await self._refuse(send, _not_acceptable(answer_in is None), self.codecs[JSON])
            return
        codec = self.codecs[answer_in]
        if scope["method"] in _WITH_BODY and scope["path"] not in _FORM_PATHS:
            try:
                body = await self._read_json_body(scope, receive, headers, messages)
            except APIError as exc:
                await self._refuse(send, exc, codec)
                return
            receive = _replay(body, receive)
        if answer_in != JSON:
            send = _reencoding(send, codec, messages)
        await self.app(scope, receive, send)

    def _routed(self, scope: Scope) -> bool:
        """Whether a route takes this method on this path (else the app answers 404 or 405, and an error
        has a Protobuf form)."""
        return any(route.matches(scope)[0] == Match.FULL for route in self.router.routes)

    async def _read_json_body(
        self, scope: Scope, receive: Receive, headers: Headers, messages: Messages
    ) -> bytes:
        """The body as the JSON the routes read, checked; the scope's headers are set to match."""
        sent_in = request_format(headers.get("content-type"))
        if sent_in is None:
            raise UnsupportedMediaTypeError(
                f"Content-Type '{headers.get('content-type')}' is not supported; send one of "
                f"{', '.join(SUPPORTED)}."
            )
        if sent_in == PROTOBUF and messages.request is None:
            raise UnsupportedMediaTypeError(
                f"{scope['method']} {scope['path']} has no Protobuf form; send JSON or XML.",
            )
        body = await _read(receive, headers, self.max_body_bytes)
        if not body:
            return body
        try:
            data = self.codecs[sent_in].decode(body, message=messages.request or "")
        except CodecError as exc:
            if sent_in == JSON:
                raise InvalidBodyError(
                    f"The request body is not a readable JSON object: {exc}. "
                    "Send a JSON object with Content-Type: application/json.",
                    code="invalid_json",
                ) from None
            raise InvalidBodyError(f"The {sent_in} body cannot be read: {exc}") from None
        if sent_in == JSON:
            return body
        converted = orjson.dumps(data)
        request_headers = MutableHeaders(scope=scope)
        request_headers["content-type"] = JSON
        request_headers["content-length"] = str(len(converted))
        return converted

    @staticmethod
    async def _refuse(send: Send, error: APIError, codec: Codec) -> None:
        body = codec.encode(error.body(), message=ERROR)
        headers = [(b"content-type", codec.media_type.encode()), (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
        await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _not_acceptable(none_at_all: bool) -> NotAcceptableError:
    if none_at_all:
        return NotAcceptableError(
            f"Accept allows none of the formats this server speaks: {', '.join(SUPPORTED)}."
        )
    return NotAcceptableError(
        "This endpoint has no Protobuf form; accept application/json or application/xml."
    )


async def _read(receive: Receive, headers: Headers, limit: int) -> bytes:
    """The whole body, refused (413) as soon as it is known to be over `limit`: by its Content-Length, or
    by what has arrived."""
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
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body, read already, once; then the connection's own messages (a disconnect, when it comes)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _reencoding(send: Send, codec: Codec, messages: Messages) -> Send:
    """A `send` that turns a JSON response into `codec`'s format; other responses (SSE) pass unchanged."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def send_encoded(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            content_type = Headers(raw=message["headers"]).get("content-type", "")
            if content_type.startswith(JSON):
                start = message
                return
        if start is None or message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        status = int(start["status"])
        try:
            body = codec.encode(
                orjson.loads(b"".join(chunks)), message=ERROR if status >= 400 else messages.response or ""
            )
        except CodecError as exc:
            status, error = (
                406,
                NotAcceptableError(f"This response cannot be sent as {codec.media_type}: {exc}"),
            )
            body = codec.encode(error.body(), message=ERROR)
            start = {**start, "status": status}
        headers = MutableHeaders(raw=list(start["headers"]))
        headers["content-type"] = codec.media_type
        headers["content-length"] = str(len(body))
        await send({**start, "headers": headers.raw})
        await send({"type": "http.response.body", "body": body})

    return send_encoded
