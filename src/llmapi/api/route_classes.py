"""How every `/v1` route does its work, in this order: authenticate the caller from the headers alone,
refuse an answer format the route has no form for, then read, decode and validate the body. Nothing of
the body is read before the caller is known. Then the route's scope is checked and the endpoint called:
directly where all it takes is the request, the body and this API's own dependencies
(`api/direct_call.py`), else by FastAPI, which solves its dependencies and takes the validated body."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import fastapi.routing
from fastapi import params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from llmapi.api.deps import PROVIDERS
from llmapi.api.direct_call import DirectCall
from llmapi.api.request_body import BodyDecoder
from llmapi.api.security import authenticate
from llmapi.errors import NotAcceptableError
from llmapi.serialization.messages import protobuf_messages
from llmapi.serialization.negotiation import JSON, PROTOBUF
from llmapi.services.request_context import RequestContext

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class ApiRoute(APIRoute):
    """A route open to anyone (the OAuth token endpoint); its body is read as every route's is."""

    authenticates = False

    def get_route_handler(self) -> Handler:
        handle = super().get_route_handler()
        route = _being_built(self)
        messages = protobuf_messages(route.openapi_extra)
        field = route.body_field
        body_field = None if field is None or isinstance(field.field_info, params.Form) else field
        direct = DirectCall.of(route.dependant, body_field=body_field, providers=PROVIDERS)
        overrides_provider = route.dependency_overrides_provider

        async def handler(request: Request) -> Response:
            context = RequestContext.of(request.scope)
            if self.authenticates:
                await authenticate(request)
            if context.answer_format == PROTOBUF and messages.response is None:
                context.answer_format = JSON  # this refusal, at least, has a form the client reads
                raise NotAcceptableError(
                    "This endpoint has no Protobuf form; accept application/json or application/xml."
                )
            context.response_message = messages.response
            body = None
            if body_field is not None:
                decoder: BodyDecoder = request.app.state.body_decoder
                decoded = await decoder.decode(request, into=body_field, protobuf_message=messages.request)
                context.document = decoded.document
                request = decoded
                body = await decoded.json()
            if (
                direct is None
                or (body is None and body_field is not None)  # FastAPI: the default, or what is missing
                or getattr(overrides_provider, "dependency_overrides", None)
            ):
                return await handle(request)
            return await direct(request, body)

        return handler


class AuthenticatedRoute(ApiRoute):
    """A route for authenticated callers: a missing or bad credential gets 401 before the body is read."""

    authenticates = True


class _RouteState(Protocol):
    """What FastAPI builds a route's handler from."""

    dependant: Dependant
    body_field: Any
    openapi_extra: dict[str, Any] | None
    dependency_overrides_provider: Any


def _being_built(route: APIRoute) -> _RouteState:
    """The state FastAPI builds this handler from: the route's own, or, while a router that includes it
    builds the handler for that inclusion, the route with the includer's prefix and dependencies (kept
    in a context variable while `get_route_handler` runs). Only the dependant built with the includer's
    dependencies lists everything that must run before the endpoint."""
    building = getattr(fastapi.routing, "_effective_route_context_var", None)
    state = building.get() if building is not None else None
    if state is not None and state.original_route is route:
        effective: _RouteState = state
        return effective
    return route
