"""`Router`, the APIRouter every router of this API is: each GET route also answers HEAD, with the GET's
status and headers (the server sends no body: uvicorn drops a HEAD answer's, as httpx's ASGI transport
does). FastAPI's routes take only the methods they declare; here the HEAD twin of a GET route is declared
with it, so that it is routed, listed in a 405's `Allow`, and documented (its answers without bodies).

FastAPI matches a request against the routes of each included router in turn, a few µs a route; a
`Router` none of whose routes can match the path says so at once: every path it serves contains the
literal start its routes' paths have in common, whatever prefix it is included under."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from starlette.routing import BaseRoute, Match, Route, WebSocketRoute
from starlette.types import Scope


class Router(APIRouter):
    _literal_of: tuple[list[BaseRoute], str] = ([], "")

    def add_api_route(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        methods: set[str] | list[str] | None = None,
        operation_id: str | None = None,
        **options: Any,
    ) -> None:
        declared = {method.upper() for method in methods or ("GET",)}
        super().add_api_route(path, endpoint, methods=declared, operation_id=operation_id, **options)
        if "GET" in declared and "HEAD" not in declared:
            head_id = f"{operation_id}_head" if operation_id else None
            super().add_api_route(path, endpoint, methods={"HEAD"}, operation_id=head_id, **options)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if self._literal() not in scope["path"]:
            return Match.NONE, {}
        return super().matches(scope)

    def _literal(self) -> str:
        """What every path a route of this router matches contains ("" where that cannot be known)."""
        routes, literal = self._literal_of
        if routes != self.routes:
            routes = list(self.routes)
            paths = [route.path for route in routes if isinstance(route, Route | WebSocketRoute)]
            literal = ""
            if len(paths) == len(routes):
                literal = os.path.commonprefix([path.split("{", 1)[0] for path in paths])  # noqa: RUF071
            self._literal_of = (routes, literal)
        return literal


def heads_without_bodies(document: dict[str, Any]) -> dict[str, Any]:
    """In the OpenAPI document, a HEAD answer has its GET's status and no content."""
    for operations in document.get("paths", {}).values():
        for response in operations.get("head", {}).get("responses", {}).values():
            response.pop("content", None)
    return document
