"""Which Protobuf messages a route's bodies are, declared with the route (JSON and XML need no such thing).

A route with a Protobuf form passes `openapi_extra=protobuf(request=..., response=...)`; the OpenAPI document
shows the names under `x-protobuf`, and the route reads them back with `protobuf_messages`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ERROR = "ErrorResponse"
X_PROTOBUF = "x-protobuf"


@dataclass(frozen=True, slots=True)
class Messages:
    request: str | None = None
    response: str | None = None


def protobuf(*, request: str | None = None, response: str | None = None) -> dict[str, Any]:
    """A route's `openapi_extra` naming its Protobuf messages (of llmapi.v1)."""
    return {X_PROTOBUF: {key: name for key, name in (("request", request), ("response", response)) if name}}


def protobuf_messages(openapi_extra: Mapping[str, Any] | None) -> Messages:
    declared = (openapi_extra or {}).get(X_PROTOBUF) or {}
    return Messages(request=declared.get("request"), response=declared.get("response"))
