"""What every answer says about itself: no cache keeps it (nor the secret a new key or token is) unless its
route allows it, and browsers neither guess its type, nor frame it, nor pass its address on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from tests.api.inprocess import InProcess, in_process
from tests.servers import ADMIN_HEADERS

from llmapi.backends.local.vader import VaderSentimentBackend
from llmapi.model_specs import ModelSpec

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def vader() -> VaderSentimentBackend:
    return VaderSentimentBackend(ModelSpec(id="vader", task="sentiment", backend="vader"))


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(tmp_path, vader()) as running:
        yield running


def assert_hardened(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.status_code, response.headers)
    assert response.headers.get_list("cache-control") == ["no-store"], response.headers


async def test_every_answer_carries_the_security_headers(stack: InProcess) -> None:
    answers = [
        await stack.client.get("/health/live"),
        await stack.client.get("/v1/models", headers=ADMIN_HEADERS),
        await stack.client.get("/v1/models"),  # 401
        await stack.client.get("/v1/nothing-here", headers=ADMIN_HEADERS),  # 404
        await stack.client.post("/v1/analyze/sentiment", headers=ADMIN_HEADERS, json={"model": "vader"}),
        await stack.client.get("/v1/models", headers={**ADMIN_HEADERS, "Accept": "application/xml"}),
    ]

    assert [a.status_code for a in answers] == [200, 200, 401, 404, 400, 200]
    for answer in answers:
        assert_hardened(answer)


@pytest.mark.parametrize(
    ("path", "body", "secret"),
    [
        ("/v1/admin/keys", {"name": "ci"}, "key"),
        ("/v1/admin/clients", {"name": "ci"}, "client_secret"),
    ],
)
async def test_an_answer_with_a_new_secret_is_never_stored(
    stack: InProcess, path: str, body: dict[str, str], secret: str
) -> None:
    created = await stack.client.post(path, json=body, headers=ADMIN_HEADERS)

    assert created.status_code == 201, created.text
    assert created.json()[secret]
    assert_hardened(created)


async def test_an_access_token_is_never_stored(stack: InProcess) -> None:
    client = (await stack.client.post("/v1/admin/clients", json={"name": "ci"}, headers=ADMIN_HEADERS)).json()
    form = {
        "grant_type": "client_credentials",
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
    }

    issued = await stack.client.post("/v1/oauth/token", data=form)

    assert issued.status_code == 200, issued.text
    assert issued.json()["access_token"]
    assert_hardened(issued)


async def test_a_route_that_allows_caching_keeps_its_own_cache_control(stack: InProcess) -> None:
    keys = await stack.client.get("/.well-known/jwks.json")

    assert keys.headers.get_list("cache-control") == ["public, max-age=60"]
    assert keys.headers["x-content-type-options"] == "nosniff"
