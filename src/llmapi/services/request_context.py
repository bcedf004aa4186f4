"""What one request carries on its way through the stack, in one typed place.

Outer layers create it (the request id), authentication fills in the principal, the inference pipeline the
admission and the cache lookup, services the usage; the layers around the app read it when the response
starts and when it is over. It lives in the ASGI scope under one key.
"""

from __future__ import annotations

import uuid
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from llmapi.auth.principal import Principal
from llmapi.serialization.negotiation import JSON
from llmapi.services.admission import Admission
from llmapi.services.response_cache import NO_CACHE, CacheLookup
from llmapi.services.usage import UsageNote

_KEY = "llmapi.context"


@dataclass(slots=True)
class RequestContext:
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    principal: Principal | None = None
    usage: UsageNote = field(default_factory=UsageNote)
    admission: Admission | None = None
    cache: CacheLookup = NO_CACHE
    answer_format: str = JSON
    """The media type the response is sent in, from `Accept`."""
    response_message: str | None = None
    """The Protobuf message of the route's successful answer; None where it has no Protobuf form."""
    document: Any = None
    """The request's body in its JSON form, as the client sent it (what is passed through upstream)."""

    @classmethod
    def of(cls, scope: MutableMapping[str, Any]) -> RequestContext:
        """The request's context, created on first use."""
        state = scope.setdefault("state", {})
        context = state.get(_KEY)
        if not isinstance(context, RequestContext):
            context = state[_KEY] = cls()
        return context
