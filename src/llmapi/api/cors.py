"""Cross-origin requests from browsers (off unless `LLMAPI_CORS_ORIGINS` names origins): Starlette's
`CORSMiddleware`, told what this API takes and what its clients read.

Preflights are answered by the middleware itself, before authentication (browsers send no credential with
them); an origin not listed gets no `Access-Control-Allow-Origin`, so the browser keeps the answer from it.
No credentials mode: callers send a key in `Authorization`, not cookies."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

# Every method a route takes (tests/api/test_cors.py checks it against the app's routes).
METHODS = ("GET", "HEAD", "POST", "PATCH", "DELETE")

# The headers the OpenAI SDKs send. CORSMiddleware matches names exactly (no `x-stainless-*`): these are the
# ones the openai-node and openai-python SDKs send, the per-platform ones and their helpers' included.
_STAINLESS = (
    "arch",
    "async",
    "custom-event-handler",
    "custom-poll-interval",
    "helper",
    "helper-method",
    "lang",
    "os",
    "package-version",
    "poll-helper",
    "raw-response",
    "read-timeout",
    "retry-count",
    "runtime",
    "runtime-version",
    "stream-helper",
    "timeout",
)
REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Accept",
    "x-api-key",
    "OpenAI-Organization",
    "OpenAI-Project",
    "OpenAI-Beta",
    "Idempotency-Key",
    "x-request-id",
    "Cache-Control",
    *(f"x-stainless-{name}" for name in _STAINLESS),
)

# What a client reads from an answer: its id, its limits, when to retry, whether the cache answered.
RESPONSE_HEADERS = (
    "x-request-id",
    *(
        f"x-ratelimit-{what}-{unit}"
        for what in ("limit", "remaining", "reset")
        for unit in ("requests", "tokens")
    ),
    "retry-after",
    "retry-after-ms",
    "x-cache",
    "x-llmapi-model",
    "x-llmapi-overhead-ms",
)


def cors_middleware(origins: Sequence[str]) -> Middleware:
    return Middleware(
        CORSMiddleware,
        allow_origins=tuple(origins),
        allow_methods=METHODS,
        allow_headers=REQUEST_HEADERS,
        expose_headers=RESPONSE_HEADERS,
    )
