"""Responses from wire models and errors, serialized once by pydantic's fast path; and the one way a route
answers with its service's result, whole or streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from llmapi.api.disconnect import cancel_on_disconnect
from llmapi.api.streaming import sse_response
from llmapi.errors import APIError
from llmapi.services.request_context import RequestContext


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")


def error_response(error: APIError, status_code: int | None = None) -> JSONResponse:
    return JSONResponse(error.body(), status_code=status_code or error.status_code, headers=error.headers)


async def answer(
    request: Request,
    result: Coroutine[Any, Any, BaseModel | bytes] | AsyncIterator[BaseModel] | AsyncIterator[list[bytes]],
) -> Response:
    """A whole answer as JSON (its work cancelled if the client leaves first), or a stream as server-sent
    events. Bytes are JSON already (passed through from an upstream), as are the lists of a passed-through
    stream."""
    if isinstance(result, AsyncIterator):
        return await sse_response(result)
    value = await cancel_on_disconnect(request, result)
    if isinstance(value, bytes):
        return Response(value, media_type="application/json")
    return json_response(value)


def document(request: Request) -> Any:
    """The request's body in its JSON form, as the client sent it."""
    return RequestContext.of(request.scope).document
