"""The headers every answer carries. Browsers neither guess its type, nor frame it, nor send its address on;
no cache keeps it unless its route says one may (an answer may hold a new API key, client secret or token)."""

from __future__ import annotations

RawHeaders = list[tuple[bytes, bytes]]

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
NO_STORE = (b"cache-control", b"no-store")


def add_security_headers(headers: RawHeaders) -> None:
    """Add them to a response's raw headers; a Cache-Control the route set stays."""
    if not any(name.lower() == b"cache-control" for name, _ in headers):
        headers.append(NO_STORE)
    headers.extend(SECURITY_HEADERS)
