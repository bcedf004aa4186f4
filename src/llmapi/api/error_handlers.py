"""Every error leaves in the OpenAI shape {"error": {message, type, param, code}}.

These handlers run inside the app, for the errors code raises on purpose; an unexpected exception is turned
into a 500 by `UnexpectedErrorMiddleware`, inside the middleware that adds the request id and the format."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Match

from llmapi.api.responses import error_response
from llmapi.errors import APIError, InvalidRequestError, NotFoundError


async def _api_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, APIError):  # pragma: no cover - registered for APIError only
        raise exc
    return error_response(exc)


_NOT_AN_OBJECT = frozenset({"model_attributes_type", "model_type", "dict_type"})


# pydantic names the member of a union it tried in `loc` ("str", "list[str]", "function-after[...]").
_TYPE_TAG = re.compile(r"^(str|int|float|bool|list|dict|bytes)$|[\[\]-]")


def _param(loc: tuple[Any, ...]) -> str | None:
    path = [str(p) for p in loc if p != "body" and not (isinstance(p, str) and _TYPE_TAG.search(p))]
    return ".".join(path) or None


def _most_telling(errors: Sequence[Any]) -> Any:
    """For a union, the error of the member that fit the input's type says more than "should be a string"."""
    return next((e for e in errors if not str(e.get("type", "")).endswith("_type")), errors[0])


async def _validation_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):  # pragma: no cover
        raise exc
    errors = exc.errors()
    first = _most_telling(errors) if errors else {"loc": (), "msg": "invalid request", "type": ""}
    if first.get("type") == "json_invalid":
        return error_response(
            InvalidRequestError(
                "The request body is not valid JSON; send a JSON object with Content-Type: application/json.",
                code="invalid_json",
            )
        )
    param = _param(tuple(first.get("loc", ())))
    if param is None and first.get("type") in _NOT_AN_OBJECT:
        return error_response(
            InvalidRequestError(
                "The request body must be a JSON object; send one with Content-Type: application/json.",
                code="invalid_json",
            )
        )
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if first.get("type") == "missing":
        message = f"'{param}' is required." if param else "A required field is missing."
    elif param:
        message = f"Invalid value for '{param}': {message}"
    if len(errors) > 1:
        message += f" ({len(errors) - 1} more problem(s) in the request.)"
    return error_response(InvalidRequestError(message, param=param, code="invalid_value"))


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # pragma: no cover
        raise exc
    see_docs = f"; see {request.app.docs_url} for the API" if request.app.docs_url else ""
    if exc.status_code == 404:
        error: APIError = NotFoundError(
            f"There is no route {request.method} {request.url.path}{see_docs}.", code="unknown_route"
        )
    elif exc.status_code == 405:
        allowed = ", ".join(_allowed_methods(request))
        error = InvalidRequestError(
            f"{request.method} is not allowed on {request.url.path}; it takes {allowed}.",
            code="method_not_allowed",
            headers={"Allow": allowed},
        )
    else:
        error = InvalidRequestError(str(exc.detail))
    return error_response(error, exc.status_code)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route takes on this path (Starlette's own 405 names only the first route's)."""
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.routes
        )
    ]


async def _client_gone(request: Request, exc: Exception) -> Response:
    return Response(status_code=499)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
