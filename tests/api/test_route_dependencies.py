"""Routes whose dependencies are all this API's own are called directly, without FastAPI's dependency
solving (`api/direct_call.py`), and answer exactly as FastAPI's path does; any other route keeps it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.utils import solve_dependencies
from starlette.responses import Response
from tests.api.inprocess import InProcess, in_process
from tests.api.test_security_headers import vader
from tests.servers import ADMIN_HEADERS
from tests.text_backend import ScriptedTextBackend

from llmapi.api.deps import RegistryDep, get_registry
from llmapi.api.route_classes import AuthenticatedRoute
from llmapi.api.routing import Router
from llmapi.api.security import PrincipalDep, require
from llmapi.auth.scopes import Scope

CHAT = {"model": "scripted", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(tmp_path, ScriptedTextBackend(), vader()) as running:
        yield running


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths FastAPI solved dependencies for."""
    paths: list[str] = []

    async def counting(**kwargs: Any) -> Any:
        paths.append(kwargs["request"].url.path)
        return await solve_dependencies(**kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    return paths


async def test_routes_with_only_known_dependencies_skip_fastapis_solving(
    stack: InProcess, solved: list[str]
) -> None:
    client = stack.client
    direct = [
        await client.post("/v1/analyze/sentiment", json={"text": "good"}, headers=ADMIN_HEADERS),
        await client.post("/v1/chat/completions", json=CHAT, headers=ADMIN_HEADERS),
        await client.post("/v1/responses", json={"model": "scripted", "input": "hi"}, headers=ADMIN_HEADERS),
        await client.get("/v1/models", headers=ADMIN_HEADERS),
        await client.head("/v1/models", headers=ADMIN_HEADERS),
        await client.get("/v1/me", headers=ADMIN_HEADERS),
        await client.post("/v1/admin/keys", json={"name": "direct"}, headers=ADMIN_HEADERS),
        await client.get("/.well-known/jwks.json"),
    ]
    assert [answer.status_code for answer in direct] == [200, 200, 200, 200, 200, 200, 201, 200]
    assert solved == []

    with_parameters = [
        await client.get("/v1/models/scripted", headers=ADMIN_HEADERS),
        await client.get("/v1/usage", params={"since": "2020-01-01T00:00:00Z"}, headers=ADMIN_HEADERS),
        await client.get("/v1/admin/keys", headers=ADMIN_HEADERS),
        await client.post("/v1/admin/signing-keys/rotate", headers=ADMIN_HEADERS),  # its body is optional
    ]
    assert [answer.status_code for answer in with_parameters] == [200, 200, 200, 200]
    assert solved == [
        "/v1/models/scripted",
        "/v1/usage",
        "/v1/admin/keys",
        "/v1/admin/signing-keys/rotate",
    ]


async def _unrelated() -> None:
    return None  # pragma: no cover - only overridden


async def test_the_direct_call_answers_as_fastapi_does(stack: InProcess, solved: list[str]) -> None:
    narrow = await stack.new_key(role="service", scopes=["models:read"])
    analyze_only = await stack.new_key(role="service", scopes=["analyze"])
    protobuf = {**ADMIN_HEADERS, "Accept": "application/x-protobuf"}
    plain_text = {**ADMIN_HEADERS, "Content-Type": "text/plain"}
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/v1/analyze/sentiment", {"json": {"text": "good"}, "headers": ADMIN_HEADERS}),
        ("POST", "/v1/analyze/sentiment", {"json": {"text": "good"}, "headers": narrow}),
        ("POST", "/v1/analyze/sentiment", {"json": {"texts": []}, "headers": narrow}),
        ("POST", "/v1/analyze/sentiment", {"headers": narrow}),
        ("POST", "/v1/analyze/sentiment", {"json": {"text": "good"}}),
        ("POST", "/v1/analyze/sentiment", {"json": [], "headers": ADMIN_HEADERS}),
        ("POST", "/v1/analyze/sentiment", {"content": b"{", "headers": ADMIN_HEADERS}),
        ("POST", "/v1/analyze/sentiment", {"content": b"good", "headers": plain_text}),
        ("POST", "/v1/analyze/sentiment", {"json": {"text": "good"}, "headers": protobuf}),
        ("POST", "/v1/chat/completions", {"json": {**CHAT, "model": "nowhere"}, "headers": ADMIN_HEADERS}),
        ("POST", "/v1/chat/completions", {"json": CHAT, "headers": analyze_only}),
        ("GET", "/v1/models", {"headers": narrow}),
        ("GET", "/v1/models", {"headers": analyze_only}),
        ("GET", "/v1/me", {"headers": protobuf}),
        ("POST", "/v1/admin/keys", {"json": {"name": "x"}, "headers": narrow}),
        ("POST", "/v1/admin/keys", {"json": {"name": "x", "role": "nobody"}, "headers": ADMIN_HEADERS}),
        ("GET", "/v1/responses/resp_nowhere", {"headers": ADMIN_HEADERS}),
    ]

    async def answers() -> list[tuple[int, Any]]:
        seen = []
        for method, path, request in cases:
            answer = await stack.client.request(method, path, **request)
            error = answer.json() if answer.status_code >= 400 else None
            seen.append((answer.status_code, error))
        return seen

    direct = await answers()
    assert solved == ["/v1/analyze/sentiment", "/v1/responses/resp_nowhere"]  # no body; a path parameter
    stack.app.dependency_overrides[_unrelated] = _unrelated  # every route takes FastAPI's path then
    through_fastapi = await answers()
    assert direct == through_fastapi
    statuses = [status for status, _ in direct]
    refused_by_the_route_class = sum(status in (400, 401, 406, 415) for status in statuses)
    assert len(solved) == 2 + len(cases) - refused_by_the_route_class
    assert statuses == [200, 403, 400, 403, 401, 400, 400, 415, 200, 404, 403, 200, 403, 406, 403, 400, 404]
    assert "analyze" in direct[1][1]["error"]["message"]


def _app(router: Router, **include: Any) -> FastAPI:
    app = FastAPI()
    app.state.authenticator = None  # authentication off: everyone is an admin
    app.state.registry = "the registry"
    app.include_router(router, **include)
    return app


async def _get(app: FastAPI, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        return await client.get(path)


async def test_a_dependency_of_another_kind_keeps_fastapis_path(solved: list[str]) -> None:
    noted: list[str] = []

    async def note(request: Request) -> None:
        noted.append(request.url.path)

    router = Router(prefix="/v1", route_class=AuthenticatedRoute)

    @router.get("/known", dependencies=[require(Scope.MODELS_READ)])
    async def known(principal: PrincipalDep, registry: RegistryDep) -> Response:
        return Response(f"{principal.name}, {registry}")

    @router.get("/noted", dependencies=[Depends(note)])
    async def with_note(registry: RegistryDep) -> Response:
        return Response(str(registry))

    @router.get("/plain")
    async def plain() -> dict[str, str]:
        return {"answered": "by FastAPI"}

    app = _app(router)
    assert (await _get(app, "/v1/known")).text == "auth off, the registry"
    assert solved == []
    assert (await _get(app, "/v1/noted")).text == "the registry"
    assert (await _get(app, "/v1/plain")).json() == {"answered": "by FastAPI"}
    assert (noted, solved) == (["/v1/noted"], ["/v1/noted", "/v1/plain"])

    app.dependency_overrides[get_registry] = lambda: "another registry"
    assert (await _get(app, "/v1/known")).text == "auth off, another registry"


async def test_the_dependencies_of_an_including_router_are_solved(solved: list[str]) -> None:
    noted: list[str] = []

    async def note(request: Request) -> None:
        noted.append(request.url.path)

    router = Router(route_class=AuthenticatedRoute)

    @router.get("/known")
    async def known(registry: RegistryDep) -> Response:
        return Response(str(registry))

    assert (
        await _get(_app(router, prefix="/v1", dependencies=[Depends(note)]), "/v1/known")
    ).status_code == 200
    assert (noted, solved) == (["/v1/known"], ["/v1/known"])
    assert (await _get(_app(router, prefix="/v2"), "/v2/known")).status_code == 200
    assert solved == ["/v1/known"]
