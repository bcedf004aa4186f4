"""How a failed call to a remote OpenAI-compatible engine becomes an llmapi error.

Messages name the model and the upstream's origin and say what to check; they never contain the API key,
and text taken from the upstream has the key scrubbed out in case the upstream echoes it.
"""

from __future__ import annotations

import email.utils
import math
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from llmapi.backends.remote.sse import SSEError
from llmapi.errors import (
    APIError,
    ContextLengthExceededError,
    InvalidRequestError,
    ServerOverloadedError,
    UpstreamError,
    UpstreamTimeoutError,
)

_CONTEXT_LENGTH = re.compile(r"context (length|size|window)", re.IGNORECASE)
_MAX_MESSAGE_CHARS = 1000


@dataclass(frozen=True, slots=True)
class _ErrorBody:
    message: str | None = None
    param: str | None = None
    code: str | None = None
    status: int | None = None


@dataclass(frozen=True, slots=True)
class UpstreamErrors:
    """Builds the llmapi error for each way a call to one model's upstream can fail."""

    model: str
    upstream_model: str
    origin: str
    timeout: float
    connect_timeout: float
    secret: str | None = field(default=None, repr=False)

    @contextmanager
    def translated(self) -> Iterator[None]:
        """Turns client-library and decoding failures raised inside the block into llmapi errors."""
        try:
            yield
        except APIError:
            raise
        except aiohttp.ConnectionTimeoutError as exc:
            raise self._timed_out(f"did not accept a connection within {self.connect_timeout:g} s") from exc
        except TimeoutError as exc:
            raise self._timed_out(f"did not answer within {self.timeout:g} s") from exc
        except aiohttp.ClientConnectorError as exc:
            raise self.unreachable(exc) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            raise UpstreamError(
                f"Model '{self.model}': the upstream at {self.origin} dropped the connection "
                f"({type(exc).__name__}). Check that the upstream server is running and healthy."
            ) from exc
        except SSEError as exc:
            raise self.broken(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise self.broken(f"the connection failed mid-response ({type(exc).__name__})") from exc

    def unreachable(self, exc: aiohttp.ClientConnectorError) -> UpstreamError:
        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            reason = "its host name does not resolve"
        elif isinstance(exc, aiohttp.ClientSSLError):
            reason = "the TLS handshake failed"
        else:
            error = exc.os_error
            reason = (os.strerror(error.errno) if error.errno else type(error).__name__).lower()
        return UpstreamError(
            f"Model '{self.model}': cannot reach its upstream at {self.origin} ({reason}). "
            "Check that the upstream server is running and that options.base_url points at it."
        )

    def broken(self, detail: str) -> UpstreamError:
        return UpstreamError(
            f"Model '{self.model}': the upstream at {self.origin} sent a bad response: {self._scrub(detail)}."
        )

    def from_status(self, status: int, body: bytes, headers: Mapping[str, str]) -> APIError:
        """The error for a non-200 answer, keeping what the upstream said where the client can act on it."""
        return self._from_error(status, _parse_body(body), headers)

    def from_event(self, event: Mapping[str, Any]) -> APIError:
        """The error for an `{"error": ...}` object the upstream sent in place of a result."""
        error = _parse_error(event)
        if error.status is not None and 400 <= error.status <= 599:
            return self._from_error(error.status, error, {})
        message = self._scrub(error.message or "no message")
        return UpstreamError(
            f"Model '{self.model}': the upstream at {self.origin} reported an error: {message}"
        )

    def _from_error(self, status: int, error: _ErrorBody, headers: Mapping[str, str]) -> APIError:
        """The upstream's status is kept, but where it is about the gateway's own configuration (401, 403,
        404: its key or model name), which the client cannot fix: that is a 502 that says what to fix."""
        mapped = self._mapped(status, error, headers)
        if status not in (401, 403, 404) and 400 <= status <= 599:
            mapped.status_code = status
        return mapped

    def _mapped(self, status: int, error: _ErrorBody, headers: Mapping[str, str]) -> APIError:
        message = self._scrub(error.message or f"HTTP {status}")
        where = f"Model '{self.model}': the upstream at {self.origin}"
        if status in (400, 413, 422):
            if error.code == "context_length_exceeded" or _CONTEXT_LENGTH.search(message):
                return ContextLengthExceededError(message, param=error.param)
            return InvalidRequestError(message, param=error.param, code=error.code)
        if status in (401, 403):
            return UpstreamError(
                f"{where} rejected our credentials (HTTP {status}). "
                "Check options.api_key, or the environment variable named by options.api_key_env.",
                code="upstream_auth_failed",
            )
        if status == 404:
            return UpstreamError(
                f"{where} does not serve '{self.upstream_model}' (HTTP 404: {message}). "
                "Set options.upstream_model to a model it serves (its GET /models lists them), "
                "or fix options.base_url."
            )
        if status in (429, 503):
            retry_after = _retry_after(headers.get("Retry-After"))
            return ServerOverloadedError(
                f"{where} is overloaded (HTTP {status}: {message}); retry after {retry_after} s.",
                retry_after=retry_after,
            )
        return UpstreamError(f"{where} failed with HTTP {status}: {message}")

    def _timed_out(self, what: str) -> UpstreamTimeoutError:
        return UpstreamTimeoutError(
            f"Model '{self.model}': the upstream at {self.origin} {what}. "
            "Check the upstream's load, or raise options.timeout / options.connect_timeout."
        )

    def _scrub(self, text: str) -> str:
        text = text[:_MAX_MESSAGE_CHARS]
        return text.replace(self.secret, "***") if self.secret else text


def _parse_body(body: bytes) -> _ErrorBody:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", errors="replace").strip()
        return _ErrorBody(message=text or None)
    return _parse_error(parsed) if isinstance(parsed, dict) else _ErrorBody(message=str(parsed))


def _parse_error(body: Mapping[str, Any]) -> _ErrorBody:
    """Reads OpenAI's `{"error": {...}}` and the shapes other engines use (`{"error": "..."}`, vLLM's flat
    `{"object": "error", "message": ...}`, FastAPI's `{"detail": ...}`)."""
    inner = body.get("error")
    fields: Mapping[str, Any] = inner if isinstance(inner, dict) else body
    message = fields.get("message") or (inner if isinstance(inner, str) else None) or body.get("detail")
    code, param = fields.get("code"), fields.get("param")
    return _ErrorBody(
        message=None if message is None else str(message),
        param=param if isinstance(param, str) else None,
        code=code if isinstance(code, str) else None,
        status=code if isinstance(code, int) and not isinstance(code, bool) else None,
    )


def _retry_after(value: str | None) -> int:
    """Seconds from a Retry-After header (seconds or an HTTP date); 1 when absent or unreadable."""
    if not value:
        return 1
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return 1
    return max(1, math.ceil(seconds)) if math.isfinite(seconds) else 1
