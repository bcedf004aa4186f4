"""Adds an admitted request's `x-ratelimit-*` headers to its response, and settles its limits with the
tokens it really used once the response is over (a stream: at its end, or when the client left)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmapi.api.usage_middleware import USAGE_NOTE
from llmapi.services.admission import Admission
from llmapi.services.usage import UsageNote

ADMISSION = "admission"


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            admission = state.get(ADMISSION)
            if message["type"] == "http.response.start" and isinstance(admission, Admission):
                MutableHeaders(scope=message).update(admission.headers)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            admission = state.get(ADMISSION)
            if isinstance(admission, Admission):
                await admission.settle(_tokens_used(state.get(USAGE_NOTE)))


def _tokens_used(note: object) -> int | None:
    if not isinstance(note, UsageNote):
        return None
    return 0 if note.cached else note.prompt_tokens + note.completion_tokens
