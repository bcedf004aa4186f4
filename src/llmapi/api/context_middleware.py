"""Every request gets its context, and every response its `x-request-id` (the client's own when it sent a
sane one, else a new one) and the security headers every answer carries (`api/security_headers.py`)."""

from __future__ import annotations

import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmapi.api.security_headers import add_security_headers
from llmapi.services.request_context import RequestContext

HEADER = "x-request-id"
_SANE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class RequestContextMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): it must not buffer streams or cost much per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        context = RequestContext.of(scope)  # a new context has a fresh request id
        if _SANE.match(incoming):
            context.request_id = incoming

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers[HEADER] = context.request_id
                add_security_headers(headers.raw)
            await send(message)

        await self.app(scope, receive, send_with_id)
