"""Records every authenticated API request's usage once it is over (a stream: at its end, or when the
client left)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmapi.auth.principal import Principal
from llmapi.services.usage import UsageEvent, UsageNote, UsageRecorder

USAGE_NOTE = "usage_note"
CLIENT_CLOSED_REQUEST = 499


class UsageMiddleware:
    def __init__(self, app: ASGIApp, recorder: UsageRecorder, *, path_prefix: str = "/v1/") -> None:
        self.app = app
        self.recorder = recorder
        self.path_prefix = path_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.path_prefix):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state[USAGE_NOTE] = UsageNote()
        start = time.perf_counter()
        status = 0

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self._record(scope, status or CLIENT_CLOSED_REQUEST, (time.perf_counter() - start) * 1000)

    def _record(self, scope: Scope, status: int, latency_ms: float) -> None:
        state = scope.get("state") or {}
        principal = state.get("principal")
        note = state.get(USAGE_NOTE)
        if not isinstance(principal, Principal) or not isinstance(note, UsageNote):
            return  # refused before authentication: nobody to account to
        self.recorder.record(
            UsageEvent(
                at=datetime.now(UTC),
                principal_id=principal.id,
                principal_kind=principal.kind,
                model=note.model or "",
                endpoint=_endpoint(scope),
                prompt_tokens=note.prompt_tokens,
                completion_tokens=note.completion_tokens,
                latency_ms=latency_ms,
                status_code=status,
                cached=note.cached,
            )
        )


def _endpoint(scope: Scope) -> str:
    """The route's template (`/v1/models/{model_id}`), so that usage groups by endpoint and a client's path
    (control characters and all) never reaches the database."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "(no route)"
