from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from llmapi.auth.secrets import CLIENT_SECRET_PREFIX, new_secret
from llmapi.db.database import Database
from llmapi.db.models import OAuthClient
from llmapi.db.repositories.oauth_clients import OAuthClientRepository


async def _create(database: Database, **overrides: Any) -> OAuthClient:
    secret = new_secret(CLIENT_SECRET_PREFIX)
    fields: dict[str, Any] = {
        "name": "batch-jobs",
        "secret_hash": secret.hash,
        "display_prefix": secret.display_prefix,
        "role": "service",
        "scopes": ["chat", "embeddings"],
        "created_by": "admin1",
    }
    async with database.session() as session:
        return await OAuthClientRepository(session).create(**(fields | overrides))


async def test_create_then_get(database: Database) -> None:
    created = await _create(database)

    async with database.session() as session:
        stored = await OAuthClientRepository(session).get(created.id)

    assert stored is not None and len(stored.id) == 32
    assert (stored.name, stored.role, stored.scopes, stored.created_by) == (
        "batch-jobs",
        "service",
        ["chat", "embeddings"],
        "admin1",
    )
    assert stored.created_at.tzinfo is not None and stored.revoked_at is None


async def test_a_chosen_client_id_is_kept(database: Database) -> None:
    created = await _create(database, client_id="client-42")

    assert created.id == "client-42"
    with pytest.raises(IntegrityError):
        await _create(database, client_id="client-42")


async def test_revoked_clients_are_not_active(database: Database) -> None:
    kept, revoked = await _create(database, name="kept"), await _create(database, name="revoked")
    async with database.session() as session:
        first = await OAuthClientRepository(session).revoke(revoked.id)
    async with database.session() as session:
        second = await OAuthClientRepository(session).revoke(revoked.id)

    async with database.session() as session:
        repository = OAuthClientRepository(session)
        assert (await repository.by_id_active(kept.id)) is not None
        assert await repository.by_id_active(revoked.id) is None
        assert await repository.by_id_active("missing") is None
        assert await repository.revoke("missing") is None
        assert [client.name for client in await repository.list()] == ["kept"]
        assert {client.name for client in await repository.list(include_revoked=True)} == {"kept", "revoked"}
    assert first is not None and second is not None and first.revoked_at == second.revoked_at


async def test_an_id_no_database_can_hold_reads_as_none(database: Database) -> None:
    async with database.session() as session:
        repository = OAuthClientRepository(session)
        assert await repository.get("a\x00b") is None
        assert await repository.by_id_active("a\x00b") is None
