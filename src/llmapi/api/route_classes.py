"""How every `/v1` route does its work, in this order: authenticate the caller from the headers alone,
refuse an answer format the route has no form for, then read and decode the body; FastAPI validates it
after that. Nothing of the body is read before the caller is known."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import params
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

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
        messages = protobuf_messages(self.openapi_extra)
        field = self.body_field
        body_field = None if field is None or isinstance(field.field_info, params.Form) else field

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
            if body_field is not None:
                decoder: BodyDecoder = request.app.state.body_decoder
                decoded = await decoder.decode(request, into=body_field, protobuf_message=messages.request)
                context.document = decoded.document
                request = decoded
            return await handle(request)

        return handler


class AuthenticatedRoute(ApiRoute):
    """A route for authenticated callers: a missing or bad credential gets 401 before the body is read."""

    authenticates = True
