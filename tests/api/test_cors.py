"""CORS (`LLMAPI_CORS_ORIGINS`): browsers on the listed origins may call the API with the OpenAI SDKs'
headers and read the headers a client reads; other origins get no grant; off by default."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.api.inprocess import InProcess, in_process
from tests.api.test_security_headers import assert_hardened, vader
from tests.servers import ADMIN_HEADERS

from llmapi.api.cors import METHODS, RESPONSE_HEADERS
from llmapi.api.routes import ROUTERS
from llmapi.services.usage import UsageEvent

ALLOWED = "https://app.example.com"
# What openai-node sends from a browser (dangerouslyAllowBrowser), as its preflight names them.
SDK_HEADERS = (
    "authorization, content-type, openai-organization, openai-project, openai-beta, idempotency-key, "
    "x-stainless-arch, x-stainless-lang, x-stainless-os, x-stainless-package-version, "
    "x-stainless-retry-count, x-stainless-runtime, x-stainless-runtime-version, x-stainless-timeout, "
    "x-stainless-async, x-api-key, x-request-id, cache-control, accept"
)


def preflight(origin: str, method: str = "POST", headers: str = SDK_HEADERS) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(tmp_path, vader(), cors_origins=[ALLOWED, "http://localhost:5173"]) as running:
        yield running


async def test_a_preflight_from_an_allowed_origin_is_granted_the_sdk_headers_without_a_credential(
    stack: InProcess,
) -> None:
    answer = await stack.client.options("/v1/chat/completions", headers=preflight(ALLOWED))

    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    allowed_headers = {h.strip().lower() for h in answer.headers["access-control-allow-headers"].split(",")}
    assert {h.strip() for h in SDK_HEADERS.split(",")} <= allowed_headers
    assert set(answer.headers["access-control-allow-methods"].split(", ")) == set(METHODS)
    assert "access-control-allow-credentials" not in answer.headers
    assert "Origin" in answer.headers["vary"]
    assert_hardened(answer)  # an answer as any other: its id and the security headers
    assert answer.headers["x-request-id"]


async def test_a_preflight_from_another_origin_gets_no_grant(stack: InProcess) -> None:
    for origin in ("https://evil.example", "https://app.example.com.evil.example", "null"):
        answer = await stack.client.options("/v1/chat/completions", headers=preflight(origin))

        assert answer.status_code == 400
        assert "access-control-allow-origin" not in answer.headers


async def test_a_preflight_asking_for_a_header_or_method_not_allowed_gets_no_grant(stack: InProcess) -> None:
    unknown_header = await stack.client.options("/v1/models", headers=preflight(ALLOWED, "GET", "x-evil"))
    unknown_method = await stack.client.options("/v1/models", headers=preflight(ALLOWED, "PUT"))

    assert (unknown_header.status_code, unknown_method.status_code) == (400, 400)


async def test_a_request_from_an_allowed_origin_carries_the_grant_and_the_exposed_headers(
    stack: InProcess,
) -> None:
    answer = await stack.client.get("/v1/models", headers={**ADMIN_HEADERS, "Origin": ALLOWED})
    refused = await stack.client.get("/v1/models", headers={"Origin": ALLOWED})  # no credential: 401

    for response in (answer, refused):
        assert response.headers["access-control-allow-origin"] == ALLOWED
        exposed = {h.strip() for h in response.headers["access-control-expose-headers"].split(",")}
        assert exposed == set(RESPONSE_HEADERS)
        assert {"x-request-id", "x-ratelimit-remaining-tokens", "retry-after-ms", "x-cache"} <= exposed
    assert (answer.status_code, refused.status_code) == (200, 401)


async def test_a_request_from_another_origin_carries_no_grant(stack: InProcess) -> None:
    answer = await stack.client.get("/v1/models", headers={**ADMIN_HEADERS, "Origin": "https://evil.example"})

    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers


async def test_a_preflight_is_not_recorded_as_usage(
    stack: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded: list[UsageEvent] = []
    monkeypatch.setattr(stack.app.state.identity.usage, "record", recorded.append)

    # Even a preflight that carries a credential (browsers send none) is answered before anyone is known.
    granted = await stack.client.options("/v1/models", headers={**preflight(ALLOWED, "GET"), **ADMIN_HEADERS})
    await stack.client.get("/v1/models", headers={**ADMIN_HEADERS, "Origin": ALLOWED})

    assert granted.status_code == 200
    assert [(event.endpoint, event.status_code) for event in recorded] == [("/v1/models", 200)]


async def test_cors_is_off_by_default(tmp_path: Path) -> None:
    async with in_process(tmp_path, vader()) as stack:
        asked = await stack.client.options("/v1/chat/completions", headers=preflight(ALLOWED))
        answer = await stack.client.get("/v1/models", headers={**ADMIN_HEADERS, "Origin": ALLOWED})

    assert asked.status_code == 405  # as any method the route does not take
    for response in (asked, answer):
        assert not [name for name in response.headers if name.startswith("access-control-")]


def test_the_allowed_methods_are_the_methods_the_routes_take() -> None:
    taken: set[str] = set()
    for router in ROUTERS:
        for route in router.routes:
            taken |= getattr(route, "methods", set())

    assert taken == set(METHODS)
