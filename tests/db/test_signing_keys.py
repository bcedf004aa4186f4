from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from llmapi.db.database import Database
from llmapi.db.models import SigningKey
from llmapi.db.repositories.signing_keys import SigningKeyRepository

PEM = "-----BEGIN PRIVATE KEY-----\nnot-a-real-key\n-----END PRIVATE KEY-----\n"


async def _add(database: Database, kid: str) -> SigningKey:
    jwk = {"kty": "EC", "crv": "P-256", "x": f"x-{kid}", "y": f"y-{kid}", "kid": kid}
    async with database.session() as session:
        key = await SigningKeyRepository(session).add(
            kid=kid, algorithm="ES256", private_key_pem=PEM, public_jwk=jwk
        )
    await asyncio.sleep(0.002)  # distinct created_at, so "newest first" is well defined
    return key


async def test_active_and_published_are_newest_first(database: Database) -> None:
    for kid in ("k1", "k2", "k3"):
        await _add(database, kid)
    async with database.session() as session:
        retired = await SigningKeyRepository(session).retire("k3")

    async with database.session() as session:
        repository = SigningKeyRepository(session)
        active = await repository.active()
        published = await repository.published()

    assert retired is not None and retired.retired_at is not None
    assert [key.kid for key in active] == ["k2", "k1"]
    assert [key.kid for key in published] == ["k3", "k2", "k1"]
    assert published[0].public_jwk["x"] == "x-k3" and published[0].private_key_pem == PEM


async def test_retire_keeps_the_first_time_and_ignores_unknown_kids(database: Database) -> None:
    await _add(database, "k1")
    async with database.session() as session:
        first = await SigningKeyRepository(session).retire("k1")
    async with database.session() as session:
        second = await SigningKeyRepository(session).retire("k1")
        missing = await SigningKeyRepository(session).retire("nope")

    assert first is not None and second is not None and first.retired_at == second.retired_at
    assert missing is None


async def test_delete_retired_before_removes_only_old_retired_keys(database: Database) -> None:
    for kid in ("old", "recent", "active"):
        await _add(database, kid)
    async with database.session() as session:
        repository = SigningKeyRepository(session)
        await repository.retire("old")
        await repository.retire("recent")
        old = await repository.retire("old")
        assert old is not None
        old.retired_at = datetime.now(UTC) - timedelta(days=2)

    async with database.session() as session:
        deleted = await SigningKeyRepository(session).delete_retired_before(
            datetime.now(UTC) - timedelta(days=1)
        )
    async with database.session() as session:
        remaining = {key.kid for key in await SigningKeyRepository(session).published()}

    assert deleted == ["old"]
    assert remaining == {"recent", "active"}


async def test_delete_removes_one_key_at_once(database: Database) -> None:
    for kid in ("leaked", "kept"):
        await _add(database, kid)
    async with database.session() as session:
        repository = SigningKeyRepository(session)
        assert await repository.delete("leaked")
        assert not await repository.delete("nope")
    async with database.session() as session:
        assert [key.kid for key in await SigningKeyRepository(session).published()] == ["kept"]


async def test_reencrypt_rewrites_the_private_keys_it_is_given(database: Database) -> None:
    for kid in ("plain", "sealed"):
        await _add(database, kid)
    async with database.session() as session:
        rewritten = await SigningKeyRepository(session).reencrypt(
            lambda pem: None if pem.startswith("sealed:") else "sealed:" + pem
        )
        assert rewritten == 2
        assert await SigningKeyRepository(session).reencrypt(lambda pem: None) == 0
    async with database.session() as session:
        stored = {key.kid: key.private_key_pem for key in await SigningKeyRepository(session).published()}
    assert stored == {"plain": "sealed:" + PEM, "sealed": "sealed:" + PEM}
