"""uvicorn's httptools protocol with the limits httptools lacks: a deadline for each request's head and one
for its body, and a bound on the head's size. What passes them is answered here (408, 431) and the
connection closed, before the app sees a request: refusing needs no credential and costs the app nothing."""

from __future__ import annotations

import asyncio
import enum
import logging
from typing import ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from llmapi.api.security_headers import NO_STORE, SECURITY_HEADERS
from llmapi.config import ServerSettings
from llmapi.errors import APIError, HeaderFieldsTooLargeError, RequestTimeoutError

logger = logging.getLogger(__name__)

# After a refusal, what else arrives is read and dropped for this long before the connection closes: a close
# with unread bytes resets the connection, and the client may then lose the answer it has not read yet.
LINGER_SECONDS = 1.0


class _Phase(enum.Enum):
    IDLE = enum.auto()  # no request begun: a new connection, or between requests (uvicorn's keep-alive)
    HEAD = enum.auto()  # a request line and headers arriving
    BODY = enum.auto()  # the head is whole, its body arriving


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """One per connection. A head must be whole within `header_timeout_seconds` of the connection's start
    (or of its first byte, on a kept-alive connection) and within `max_header_bytes`; a body within
    `body_timeout_seconds` of its head, read or not."""

    limits: ClassVar[ServerSettings] = ServerSettings()

    _phase = _Phase.IDLE
    _head_budget = 0  # bytes the head being read may still take
    _deadline: asyncio.TimerHandle | None = None
    _refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_budget = self.limits.max_header_bytes
        self._deadline = self.loop.call_later(self.limits.header_timeout_seconds, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._phase is _Phase.BODY:
            super().data_received(data)
        elif len(data) <= self._head_budget:
            self._head_budget -= len(data)
            super().data_received(data)
        else:
            head, rest = data[: self._head_budget], data[self._head_budget :]
            self._head_budget = 0
            super().data_received(head)
            if self.transport.is_closing():  # uvicorn refused it (400)
                return
            if self._head_ended():
                self.data_received(rest)
            else:
                self._refuse(
                    HeaderFieldsTooLargeError(
                        "The request line and headers are larger than this server's limit of "
                        f"{self.limits.max_header_bytes:,} bytes; send fewer or shorter headers."
                    )
                )
                return
        if self._deadline is None and self._phase is not _Phase.IDLE:
            self._arm_deadline()

    def _head_ended(self) -> bool:
        """Whether the head being read has ended (its request may have too: the budget is then renewed)."""
        return self._phase is _Phase.BODY or self._head_budget > 0

    # httptools' callbacks, in the order a request arrives

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = _Phase.HEAD

    def on_headers_complete(self) -> None:
        self._phase = _Phase.BODY
        self._cancel_deadline()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._phase = _Phase.IDLE
        self._head_budget = self.limits.max_header_bytes
        self._cancel_deadline()

    # deadlines

    def _arm_deadline(self) -> None:
        if self._phase is _Phase.HEAD:
            self._deadline = self.loop.call_later(self.limits.header_timeout_seconds, self._head_timed_out)
        elif self._phase is _Phase.BODY:
            self._deadline = self.loop.call_later(self.limits.body_timeout_seconds, self._body_timed_out)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_timed_out(self) -> None:
        self._deadline = None
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # an earlier request is still being answered: close after it
        elif self._phase is _Phase.HEAD:
            self._refuse(
                RequestTimeoutError(
                    "The request line and headers did not arrive within "
                    f"{self.limits.header_timeout_seconds:g} seconds; send them at once."
                )
            )
        else:
            self.transport.close()  # nothing was asked: nothing to answer

    def _body_timed_out(self) -> None:
        self._deadline = None
        cycle = self.cycle
        if self.pipeline:  # queued behind an earlier request, so not read yet: not the client's delay
            self._arm_deadline()
        elif cycle.response_complete:  # answered without its body (refused before reading it)
            self.transport.close()
        elif cycle.response_started:
            cycle.keep_alive = False
        else:
            cycle.disconnected = True  # to the app, the client has gone: it answers nothing more
            cycle.message_event.set()
            self._refuse(
                RequestTimeoutError(
                    f"The request body did not arrive within {self.limits.body_timeout_seconds:g} seconds "
                    "of its headers; send it faster, or a smaller one."
                )
            )

    def _refuse(self, error: APIError) -> None:
        """Answer `error`; drop what else arrives, and close once the client has had the time to read it."""
        self._refused = True
        self._cancel_deadline()
        client = "%s:%d" % self.client if self.client else "a client"  # noqa: UP031 (as uvicorn logs it)
        logger.info("%s - refused before the app: %d %s", client, error.status_code, error.code)
        body = orjson.dumps(error.body())
        headers = [
            *self.server_state.default_headers,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            NO_STORE,
            *SECURITY_HEADERS,
        ]
        head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        self.transport.write(STATUS_LINE[error.status_code] + head + b"\r\n" + body)
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


def http_protocol(settings: ServerSettings) -> type[GuardedHttpToolsProtocol]:
    """The protocol class to give uvicorn (`http=`), bound to these limits."""

    class BoundProtocol(GuardedHttpToolsProtocol):
        limits = settings

    return BoundProtocol
