"""An unexpected exception becomes a 500 in the OpenAI error shape here, inside our other layers, so that
it carries its request id, is sent in the client's format and is recorded as 500. It is logged as the bug
it is."""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmapi.api.responses import error_response
from llmapi.errors import InternalServerError
from llmapi.services.request_context import RequestContext

logger = logging.getLogger(__name__)


class UnexpectedErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_noting_start)
        except Exception:
            request_id = RequestContext.of(scope).request_id
            logger.exception("unhandled error (request %s)", request_id)
            if started:
                raise  # the response is under way: the server can only cut it
            error = InternalServerError(
                f"The server hit an unexpected error; it is logged under request id {request_id}."
            )
            await error_response(error)(scope, receive, send)
