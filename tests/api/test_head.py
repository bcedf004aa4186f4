"""HEAD wherever GET is: the GET's status and headers, no body; a 405 names HEAD where it is taken."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.api.inprocess import InProcess, in_process
from tests.api.test_security_headers import vader
from tests.servers import ADMIN_HEADERS

# Headers that differ from one answer to the next, whatever the method.
_PER_ANSWER = {"x-request-id", "date", "x-llmapi-overhead-ms"}


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(tmp_path, vader(), docs="on") as running:
        yield running


async def _get_paths(stack: InProcess) -> list[str]:
    """Every GET path of the document, its ids filled with real ones."""
    key = await stack.client.post("/v1/admin/keys", json={"name": "k"}, headers=ADMIN_HEADERS)
    client = await stack.client.post("/v1/admin/clients", json={"name": "c"}, headers=ADMIN_HEADERS)
    ids = {
        "model_id": "vader",
        "key_id": key.json()["id"],
        "client_id": client.json()["client_id"],
        "response_id": "resp_none",
    }
    document = (await stack.client.get("/openapi.json")).json()
    return [path.format(**ids) for path, operations in document["paths"].items() if "get" in operations]


async def test_head_answers_as_get_without_a_body_on_every_get_route(stack: InProcess) -> None:
    paths = await _get_paths(stack)
    assert {
        "/v1/models",
        "/v1/models/vader",
        "/v1/me",
        "/v1/usage",
        "/metrics",
        "/.well-known/jwks.json",
    } <= set(paths)
    assert {"/health/live", "/health/ready", "/v1/admin/keys", "/v1/admin/clients"} <= set(paths)

    for path in paths:
        for headers in (ADMIN_HEADERS, {}, {**ADMIN_HEADERS, "Accept": "application/xml"}):
            got = await stack.client.get(path, headers=headers)
            head = await stack.client.head(path, headers=headers)

            assert head.status_code == got.status_code, (path, headers, head.text)
            assert head.content == b""
            expected = {k: v for k, v in got.headers.items() if k not in _PER_ANSWER}
            if path == "/metrics":  # its counters move between the two requests
                expected.pop("content-length")
            assert {k: v for k, v in head.headers.items() if k in expected} == expected, path
            assert head.headers.keys() - _PER_ANSWER == got.headers.keys() - _PER_ANSWER, path


async def test_a_405_lists_head_where_get_is(stack: InProcess) -> None:
    on_a_get_route = await stack.client.post("/v1/models", headers=ADMIN_HEADERS)
    on_a_post_route = await stack.client.head("/v1/chat/completions", headers=ADMIN_HEADERS)
    on_a_key = await stack.client.put("/v1/admin/keys/abc", headers=ADMIN_HEADERS)

    assert on_a_get_route.status_code == 405
    assert on_a_get_route.headers["allow"] == "GET, HEAD"
    assert on_a_get_route.json()["error"]["code"] == "method_not_allowed"
    assert (on_a_post_route.status_code, on_a_post_route.headers["allow"]) == (405, "POST")
    assert on_a_key.headers["allow"] == "GET, HEAD, PATCH, DELETE"
