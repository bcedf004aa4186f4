"""A route's endpoint called with its arguments resolved directly, without FastAPI's dependency solving.

Solving a route's dependency tree costs FastAPI some 150 µs a request (the security schemes read headers
that `authenticate` reads anyway, query parameters are parsed though there are none, each node gets a
cache key). When every parameter of a route is the request, its body (which the route class has decoded
and validated already) or a dependency this API provides itself (`deps.PROVIDERS`, or the scope check of
`require`), the route class calls the endpoint with those itself, in the order FastAPI would resolve them.
Anything else keeps FastAPI's path: path, query, header or form parameters, another dependency, an
endpoint that answers with anything but a `Response`, and every request while dependencies are
overridden."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_typed_return_annotation
from starlette.requests import Request
from starlette.responses import Response

from llmapi.api.security import check_scopes, scope_check
from llmapi.auth.scopes import Scope

Resolver = Callable[[Request], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class DirectCall:
    endpoint: Callable[..., Awaitable[Response]]
    steps: tuple[tuple[str | None, Resolver], ...]
    """In FastAPI's order: the route's declared dependencies (no name), then the endpoint's parameters."""
    request_name: str | None
    body_name: str | None

    @classmethod
    def of(
        cls,
        dependant: Dependant,
        *,
        body_field: object | None,
        providers: Mapping[Callable[..., Any], Resolver],
    ) -> DirectCall | None:
        """The direct call of a route whose dependant FastAPI built is `dependant`, or None where only
        FastAPI can call it. `body_field`: the field the route class decodes the body into, if it does."""
        endpoint, body = dependant.call, dependant.body_params
        if (
            endpoint is None
            or not inspect.iscoroutinefunction(endpoint)
            or not _answers_with_a_response(endpoint)
            or _takes_more_than_request_and_body(dependant)
            or len(body) > 1
            or (body and body[0] is not body_field)
        ):
            return None
        steps: list[tuple[str | None, Resolver]] = []
        seen: set[tuple[Callable[..., Any], tuple[str, ...]]] = set()
        for dependency in dependant.dependencies:
            scopes = tuple(
                dict.fromkeys([*(dependency.parent_oauth_scopes or []), *(dependency.own_oauth_scopes or [])])
            )
            call = dependency.call
            if call is None or (call, scopes) in seen:  # FastAPI would give both the one value it solved
                return None
            seen.add((call, scopes))
            if call is check_scopes:
                steps.append((dependency.name, scope_check(Scope(name) for name in scopes)))
            elif call in providers:
                steps.append((dependency.name, providers[call]))
            else:
                return None
        return cls(endpoint, tuple(steps), dependant.request_param_name, body[0].name if body else None)

    async def __call__(self, request: Request, body: Any) -> Response:
        arguments: dict[str, Any] = {}
        for name, resolve in self.steps:
            value = await resolve(request)
            if name is not None:
                arguments[name] = value
        if self.request_name is not None:
            arguments[self.request_name] = request
        if self.body_name is not None:
            arguments[self.body_name] = body
        return await self.endpoint(**arguments)


def _answers_with_a_response(endpoint: Callable[..., Any]) -> bool:
    answer = get_typed_return_annotation(endpoint)
    return isinstance(answer, type) and issubclass(answer, Response)


def _takes_more_than_request_and_body(dependant: Dependant) -> bool:
    return bool(
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
    )
