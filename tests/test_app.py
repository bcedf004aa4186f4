"""What `create_app` exposes: no trailing-slash redirect (it was built from the request's Host), and the API
description only when `LLMAPI_DOCS=on`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from llmapi.backends.local.vader import VaderSentimentBackend
from llmapi.model_specs import ModelSpec
from tests.api.inprocess import InProcess, in_process
from tests.servers import ADMIN_HEADERS


def vader() -> VaderSentimentBackend:
    return VaderSentimentBackend(ModelSpec(id="vader", task="sentiment", backend="vader"))


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(tmp_path, vader()) as running:
        yield running


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/health/live/"),
        ("GET", "/v1/me/"),
        ("POST", "/v1/analyze/sentiment/"),
        ("GET", "/v1/models/"),
    ],
)
async def test_a_trailing_slash_is_a_404_never_a_redirect_built_from_host(
    stack: InProcess, method: str, path: str
) -> None:
    response = await stack.client.request(method, path, headers={**ADMIN_HEADERS, "Host": "evil.example"})

    assert response.status_code == 404
    assert response.json()["error"]["code"] in {"unknown_route", "model_not_found"}
    assert "location" not in response.headers
    assert "evil.example" not in response.text


async def test_the_api_description_is_off_by_default(stack: InProcess) -> None:
    for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
        response = await stack.client.get(path)
        assert response.status_code == 404, path
        assert "see /docs" not in response.json()["error"]["message"], "no pointer to docs that are off"


async def test_the_api_description_is_served_when_turned_on(tmp_path: Path) -> None:
    async with in_process(tmp_path, vader(), docs="on") as stack:
        answers = [await stack.client.get(path) for path in ("/docs", "/redoc", "/openapi.json")]
        unknown = await stack.client.get("/v1/nothing-here", headers=ADMIN_HEADERS)

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert "/v1/admin/keys" in answers[2].json()["paths"]
    assert "see /docs" in unknown.json()["error"]["message"]
