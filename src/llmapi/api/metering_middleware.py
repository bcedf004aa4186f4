"""Once a `/v1` response is over (a stream: at its end, or when the client left), settle the request's
admission with the tokens it really used (a request that failed after admission: at least its prompts'
estimate) and record its usage with the status it got. The response carries
the `x-ratelimit-*` headers of its admission, `x-cache` where the cache could have answered it,
`x-llmapi-model` (the model that answered: a fallback's, where one did), and `x-llmapi-overhead-ms`: the
time the gateway itself took to the answer's start, less the time it waited on an upstream (also the
`llmapi_gateway_overhead_seconds` histogram)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmapi.observability.gateway_metrics import GatewayMetrics
from llmapi.observability.upstream_wait import track_upstream_wait
from llmapi.services.request_context import RequestContext
from llmapi.services.usage import UsageEvent, UsageNote, UsageRecorder

CLIENT_CLOSED_REQUEST = 499


class MeteringMiddleware:
    def __init__(
        self, app: ASGIApp, recorder: UsageRecorder, metrics: GatewayMetrics, *, path_prefix: str = "/v1/"
    ) -> None:
        self.app = app
        self.recorder = recorder
        self.overhead = metrics.overhead
        self.path_prefix = path_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.path_prefix):
            await self.app(scope, receive, send)
            return
        context = RequestContext.of(scope)
        start = time.perf_counter()
        upstream = track_upstream_wait()
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                overhead = time.perf_counter() - start - upstream.seconds
                self.overhead.observe(overhead)
                headers = MutableHeaders(scope=message)
                headers["x-llmapi-overhead-ms"] = f"{overhead * 1000:.2f}"
                if context.admission is not None:
                    headers.update(context.admission.headers)
                if context.cache.status is not None:
                    headers["x-cache"] = context.cache.status
                if context.usage.model:
                    headers["x-llmapi-model"] = context.usage.model
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if context.admission is not None:
                note = context.usage
                await context.admission.settle(
                    0 if note.cached else note.prompt_tokens + note.completion_tokens,
                    failed=_failed(status, note),
                )
            self._record(scope, context, status or CLIENT_CLOSED_REQUEST, time.perf_counter() - start)

    def _record(self, scope: Scope, context: RequestContext, status: int, seconds: float) -> None:
        principal, note = context.principal, context.usage
        if principal is None:
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
                latency_ms=seconds * 1000,
                status_code=status,
                cached=note.cached,
            )
        )


def _failed(status: int, note: UsageNote) -> bool:
    """An admitted request failed when no answer came back whole: an error status, no response at all (the
    client left first), or a stream cut short (it ended with an error event, or its client left)."""
    return status == 0 or status >= 400 or note.cut_short


def _endpoint(scope: Scope) -> str:
    """The route's template (`/v1/models/{model_id}`), so that usage groups by endpoint and a client's path
    (control characters and all) never reaches the database."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "(no route)"
