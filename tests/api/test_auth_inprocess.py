"""What a hostile caller can do with OAuth clients and access tokens, tried on one instance in process."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.api.inprocess import InProcess, in_process
from tests.servers import ADMIN_HEADERS

from llmapi.auth.access_tokens import AccessTokens


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(tmp_path) as running:
        yield running


async def new_client(stack: InProcess, **fields: Any) -> dict[str, Any]:
    response = await stack.client.post(
        "/v1/admin/clients", json={"name": "test", **fields}, headers=ADMIN_HEADERS
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def token_for(stack: InProcess, client: dict[str, Any]) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
    }
    response = await stack.client.post("/v1/oauth/token", data=form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_client_created_with_no_scopes_holds_none(stack: InProcess) -> None:
    client = await new_client(stack, role="admin", scopes=[])
    assert client["scopes"] == []
    form = {
        "grant_type": "client_credentials",
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
    }
    refused = await stack.client.post("/v1/oauth/token", data=form)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_scope")
    described = await stack.client.get(f"/v1/admin/clients/{client['client_id']}", headers=ADMIN_HEADERS)
    assert described.json()["scopes"] == []


async def test_a_client_created_without_scopes_holds_its_roles(stack: InProcess) -> None:
    client = await new_client(stack, role="service")
    assert "chat" in client["scopes"]
    assert "admin" not in client["scopes"]


async def test_revoking_a_client_refuses_its_tokens_at_once(stack: InProcess) -> None:
    client = await new_client(stack, scopes=["models:read"])
    token = await token_for(stack, client)
    assert (await stack.client.get("/v1/me", headers=bearer(token))).status_code == 200  # now cached
    revoked = await stack.client.delete(f"/v1/admin/clients/{client['client_id']}", headers=ADMIN_HEADERS)
    assert revoked.status_code == 200
    refused = await stack.client.get("/v1/me", headers=bearer(token))
    assert refused.status_code == 401
    assert "revoked" in refused.json()["error"]["message"]
    assert token not in refused.text


async def kids_published(stack: InProcess) -> set[str]:
    return {jwk["kid"] for jwk in (await stack.client.get("/.well-known/jwks.json")).json()["keys"]}


async def test_rotating_with_retire_previous_refuses_the_old_keys_tokens_at_once(stack: InProcess) -> None:
    client = await new_client(stack, scopes=["models:read"])
    old = await token_for(stack, client)
    assert (await stack.client.get("/v1/me", headers=bearer(old))).status_code == 200
    rotated = await stack.client.post(
        "/v1/admin/signing-keys/rotate", json={"retire_previous": True}, headers=ADMIN_HEADERS
    )
    assert rotated.status_code == 200, rotated.text
    refused = await stack.client.get("/v1/me", headers=bearer(old))
    assert refused.status_code == 401
    assert "retired" in refused.json()["error"]["message"]
    new = await token_for(stack, client)
    assert (await stack.client.get("/v1/me", headers=bearer(new))).status_code == 200
    assert await kids_published(stack) == {rotated.json()["kid"]}


async def test_rotating_without_a_body_keeps_the_old_keys_tokens(stack: InProcess) -> None:
    client = await new_client(stack, scopes=["models:read"])
    old = await token_for(stack, client)
    kids_before = await kids_published(stack)
    rotated = await stack.client.post("/v1/admin/signing-keys/rotate", headers=ADMIN_HEADERS)
    assert rotated.status_code == 200, rotated.text
    assert (await stack.client.get("/v1/me", headers=bearer(old))).status_code == 200
    assert await kids_published(stack) == kids_before | {rotated.json()["kid"]}


async def test_a_token_living_longer_than_the_configured_ttl_is_refused_though_signed_by_our_key(
    stack: InProcess,
) -> None:
    client = await new_client(stack, scopes=["models:read"])
    settings, identity = stack.app.state.settings, stack.app.state.identity
    ours = AccessTokens(identity.key_ring, issuer=settings.jwt_issuer, audience=settings.jwt_audience)

    def minted(ttl_seconds: int) -> str:
        issued = ours.issue(
            subject=client["client_id"], scopes=["models:read"], role="service", ttl_seconds=ttl_seconds
        )
        return issued.token

    year = await stack.client.get("/v1/me", headers=bearer(minted(365 * 86_400)))
    assert year.status_code == 401
    assert "lifetime" in year.json()["error"]["message"]
    configured = minted(settings.access_token_ttl_seconds)
    assert (await stack.client.get("/v1/me", headers=bearer(configured))).status_code == 200


def stored_private_keys(database: Path) -> list[str]:
    with sqlite3.connect(database) as connection:
        return [row[0] for row in connection.execute("SELECT private_key_pem FROM signing_keys")]


async def test_signing_keys_are_encrypted_at_rest_with_a_secret_beside_the_database(stack: InProcess) -> None:
    stored = stored_private_keys(stack.database)
    assert stored and all(pem.startswith("fernet:") and "PRIVATE KEY" not in pem for pem in stored)
    secret_file = stack.database.with_suffix(".secret")
    for path in (stack.database, secret_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert secret_file.read_text().strip() not in stack.database.read_bytes().decode("latin-1")


async def test_a_restart_signs_and_verifies_with_the_keys_it_stored(tmp_path: Path) -> None:
    async with in_process(tmp_path) as first:
        client = await new_client(first, scopes=["models:read"])
        token = await token_for(first, client)
    async with in_process(tmp_path) as again:  # the same key file beside the same database
        assert (await again.client.get("/v1/me", headers=bearer(token))).status_code == 200


async def test_the_secret_key_rotates_with_its_previous_one_for_one_start(tmp_path: Path) -> None:
    old, new = "old-secret-key-" + "o" * 32, "new-secret-key-" + "n" * 32
    async with in_process(tmp_path, secret_key=old) as first:
        client = await new_client(first, scopes=["models:read"])
        token = await token_for(first, client)
    async with in_process(tmp_path, secret_key=new, secret_key_previous=old) as rotating:
        assert (await rotating.client.get("/v1/me", headers=bearer(token))).status_code == 200
    async with in_process(tmp_path, secret_key=new) as rotated:  # re-encrypted: the old one is not needed
        assert (await rotated.client.get("/v1/me", headers=bearer(token))).status_code == 200
        assert (await token_for(rotated, client)) != token
    assert not (tmp_path / "llmapi.secret").exists()
