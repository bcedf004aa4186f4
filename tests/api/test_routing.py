"""`Router`: a router none of whose routes can match a path is not searched route by route, whatever
prefix it is included under, and routes added later are found."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Match, Mount
from starlette.types import Scope

from llmapi.api.routing import Router


def _router(prefix: str) -> Router:
    router = Router(prefix=prefix)

    @router.get("/items/{item_id:path}")
    async def item(item_id: str) -> Response:
        return PlainTextResponse(f"{prefix} {item_id}")

    @router.post("/items")
    async def create() -> Response:
        return PlainTextResponse(f"{prefix} created")

    return router


@pytest.fixture
def searched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The routes FastAPI tried, by path."""
    paths: list[str] = []
    matches = APIRoute.matches

    def noting(route: APIRoute, scope: Scope) -> tuple[Match, Scope]:
        paths.append(route.path)
        return matches(route, scope)

    monkeypatch.setattr(APIRoute, "matches", noting)
    return paths


async def _answer(app: FastAPI, method: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        return await client.request(method, path)


async def test_only_a_router_that_can_match_is_searched(searched: list[str]) -> None:
    app = FastAPI()
    app.include_router(_router("/alpha"))
    app.include_router(_router("/beta"), prefix="/api")

    answer = await _answer(app, "GET", "/api/beta/items/a/b")
    assert (answer.status_code, answer.text) == (200, "/beta a/b")
    assert set(searched) == {"/beta/items/{item_id:path}"}

    searched.clear()
    assert (await _answer(app, "GET", "/alpha/items/x")).text == "/alpha x"
    assert (await _answer(app, "DELETE", "/alpha/items")).status_code == 405
    assert (await _answer(app, "GET", "/gamma")).status_code == 404
    assert not any(path.startswith("/beta") for path in searched)
    assert (await _answer(app, "GET", "/beta/items/x")).status_code == 404  # included under /api only


async def test_routes_added_later_are_found() -> None:
    router = _router("/alpha")
    app = FastAPI()
    app.include_router(router)
    assert (await _answer(app, "GET", "/alpha/items/x")).status_code == 200

    @router.get("/other")
    async def elsewhere() -> Response:
        return PlainTextResponse("found")

    assert (await _answer(app, "GET", "/alpha/other")).text == "found"


async def test_a_router_holding_other_routes_is_always_searched() -> None:
    router = _router("/alpha")
    router.routes.append(Mount("/mounted", app=PlainTextResponse("mounted")))
    app = FastAPI()
    app.include_router(router)
    assert (await _answer(app, "GET", "/mounted/anything")).text == "mounted"
