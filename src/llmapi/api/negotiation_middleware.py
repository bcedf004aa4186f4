"""Every `/v1` answer in the format `Accept` asks for: JSON, XML or Protobuf.

The format is decided here from the headers alone (406 when `Accept` allows none of them); a JSON response
(errors included) is re-encoded in it on the way out. Server-sent event streams stay JSON whatever was asked.
Request bodies are decoded later, once the caller is known (`api/route_classes.py`).
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmapi.api.responses import error_response
from llmapi.errors import APIError, NotAcceptableError
from llmapi.serialization.codec import Codec, CodecError
from llmapi.serialization.messages import ERROR
from llmapi.serialization.negotiation import JSON, PROTOBUF, SUPPORTED, response_format
from llmapi.services.request_context import RequestContext


class NegotiationMiddleware:
    def __init__(self, app: ASGIApp, *, codecs: Mapping[str, Codec]) -> None:
        self.app = app
        self.codecs = codecs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        answer_in = response_format(Headers(scope=scope).get("accept"))
        if answer_in is None:
            error = NotAcceptableError(
                f"Accept allows none of the formats this server speaks: {', '.join(SUPPORTED)}."
            )
            await error_response(error)(scope, receive, send)
            return
        context = RequestContext.of(scope)
        context.answer_format = answer_in
        if answer_in != JSON:
            send = _reencoding(send, self.codecs[answer_in], context)
        await self.app(scope, receive, send)


def _reencoding(send: Send, codec: Codec, context: RequestContext) -> Send:
    """A `send` that turns a JSON response into `codec`'s format; other responses (SSE) pass unchanged."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def send_encoded(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start" and context.answer_format != JSON:
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
        message_name = ERROR if status >= 400 else context.response_message
        try:
            if message_name is None and codec.media_type == PROTOBUF:  # XML needs no message name
                raise CodecError("this answer has no such form")
            body = codec.encode(orjson.loads(b"".join(chunks)), message=message_name or "")
        except CodecError as exc:
            error: APIError = NotAcceptableError(f"This response cannot be sent as {codec.media_type}: {exc}")
            status, body = error.status_code, codec.encode(error.body(), message=ERROR)
        headers = MutableHeaders(raw=list(start["headers"]))
        headers["content-type"] = codec.media_type
        headers["content-length"] = str(len(body))
        await send({**start, "status": status, "headers": headers.raw})
        await send({"type": "http.response.body", "body": body})

    return send_encoded
