"""`Router`, the APIRouter every router of this API is: each GET route also answers HEAD, with the GET's
status and headers (the server sends no body: uvicorn drops a HEAD answer's, as httpx's ASGI transport
does). FastAPI's routes take only the methods they declare; here the HEAD twin of a GET route is declared
with it, so that it is routed, listed in a 405's `Allow`, and documented (its answers without bodies)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter


class Router(APIRouter):
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


def heads_without_bodies(document: dict[str, Any]) -> dict[str, Any]:
    """In the OpenAPI document, a HEAD answer has its GET's status and no content."""
    for operations in document.get("paths", {}).values():
        for response in operations.get("head", {}).get("responses", {}).values():
            response.pop("content", None)
    return document
