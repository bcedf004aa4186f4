from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, StatementError

from llmapi.auth.secrets import hash_secret, new_secret
from llmapi.db.database import Database
from llmapi.db.models import ApiKey, Base
from llmapi.db.repositories.api_keys import ApiKeyRepository, rate_limits_of
from llmapi.db.repositories.audit_log import AuditLog
from llmapi.types import RateLimits

LIMITS = RateLimits(requests_per_minute=60, max_concurrent=4)


async def _create(database: Database, **overrides: Any) -> ApiKey:
    secret = new_secret()
    fields: dict[str, Any] = {
        "name": "ci",
        "key_hash": secret.hash,
        "display_prefix": secret.display_prefix,
        "role": "developer",
        "scopes": None,
        "rate_limits": RateLimits(),
        "expires_at": None,
        "created_by": None,
    }
    async with database.session() as session:
        return await ApiKeyRepository(session).create(**(fields | overrides))


async def test_create_then_read_by_id_and_hash(database: Database) -> None:
    expires = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    created = await _create(
        database, scopes=["chat", "models:read"], rate_limits=LIMITS, expires_at=expires, created_by="admin1"
    )

    async with database.session() as session:
        repository = ApiKeyRepository(session)
        by_id = await repository.get(created.id)
        by_hash = await repository.by_hash(created.key_hash)

    assert by_id is not None and by_hash is not None
    assert by_id.id == by_hash.id == created.id and len(created.id) == 32
    assert by_id.scopes == ["chat", "models:read"]
    assert by_id.rate_limits == {  # stored as JSON, every field present, null where unset
        "requests_per_minute": 60,
        "tokens_per_minute": None,
        "max_concurrent": 4,
        "tokens_per_day": None,
        "tokens_per_month": None,
    }
    assert rate_limits_of(by_id) == LIMITS
    assert by_id.expires_at == expires and by_id.expires_at.tzinfo is UTC
    assert by_id.created_at.tzinfo is UTC and by_id.created_by == "admin1"
    assert by_id.revoked_at is None and by_id.last_used_at is None


async def test_null_scopes_are_stored_as_sql_null(database: Database) -> None:
    created = await _create(database, scopes=None)

    async with database.session() as session:
        is_null = await session.scalar(select(ApiKey.scopes.is_(None)).where(ApiKey.id == created.id))

    assert is_null is True


async def test_unknown_keys_read_as_none(database: Database) -> None:
    async with database.session() as session:
        repository = ApiKeyRepository(session)
        assert await repository.get("missing") is None
        assert await repository.by_hash("0" * 64) is None
        assert await repository.update("missing", name="x") is None
        assert await repository.revoke("missing") is None
        assert await repository.get("a\x00b") is None, "PostgreSQL text cannot hold NUL: no such id"


async def test_hashes_are_unique(database: Database) -> None:
    first = await _create(database)

    with pytest.raises(IntegrityError):
        await _create(database, key_hash=first.key_hash)


async def test_list_leaves_out_revoked_keys_unless_asked(database: Database) -> None:
    kept, revoked = await _create(database, name="kept"), await _create(database, name="revoked")
    async with database.session() as session:
        await ApiKeyRepository(session).revoke(revoked.id)

    async with database.session() as session:
        repository = ApiKeyRepository(session)
        active = [key.name for key in await repository.list()]
        everything = {key.name for key in await repository.list(include_revoked=True)}

    assert active == [kept.name]
    assert everything == {"kept", "revoked"}


async def test_revoke_keeps_the_first_time(database: Database) -> None:
    key = await _create(database)
    async with database.session() as session:
        first = await ApiKeyRepository(session).revoke(key.id)
    async with database.session() as session:
        second = await ApiKeyRepository(session).revoke(key.id)

    assert first is not None and second is not None and first.revoked_at is not None
    assert second.revoked_at == first.revoked_at


async def test_update_changes_only_the_fields_given(database: Database) -> None:
    key = await _create(
        database, scopes=["chat"], rate_limits=LIMITS, expires_at=datetime(2030, 1, 1, tzinfo=UTC)
    )

    async with database.session() as session:
        await ApiKeyRepository(session).update(key.id, name="renamed", expires_at=None)
    async with database.session() as session:
        updated = await ApiKeyRepository(session).get(key.id)

    assert updated is not None
    assert (updated.name, updated.expires_at) == ("renamed", None)
    assert (updated.role, updated.scopes, rate_limits_of(updated)) == ("developer", ["chat"], LIMITS)

    async with database.session() as session:
        await ApiKeyRepository(session).update(key.id, role="service", scopes=None, rate_limits=RateLimits())
    async with database.session() as session:
        again = await ApiKeyRepository(session).get(key.id)

    assert again is not None
    assert (again.name, again.role, again.scopes, rate_limits_of(again)) == (
        "renamed",
        "service",
        None,
        RateLimits(),
    )


async def test_limits_stored_before_the_token_budgets_existed_read_as_unset_budgets(
    database: Database,
) -> None:
    key = await _create(database, rate_limits=LIMITS)
    async with database.session() as session:
        stored = await ApiKeyRepository(session).get(key.id)
        assert stored is not None
        stored.rate_limits = {"requests_per_minute": 60, "tokens_per_minute": None, "max_concurrent": 4}
    async with database.session() as session:
        again = await ApiKeyRepository(session).get(key.id)

    assert again is not None and rate_limits_of(again) == LIMITS


async def test_touch_last_used_batches_and_never_goes_backwards(database: Database) -> None:
    one, two, untouched = await _create(database), await _create(database), await _create(database)
    early = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
    late = early + timedelta(minutes=5)

    async with database.session() as session:
        await ApiKeyRepository(session).touch_last_used({one.id: late, two.id: early, "missing": late})
    async with database.session() as session:
        await ApiKeyRepository(session).touch_last_used({one.id: early, two.id: late})
        await ApiKeyRepository(session).touch_last_used({})

    async with database.session() as session:
        stored = {key.id: key.last_used_at for key in await ApiKeyRepository(session).list()}

    assert stored == {one.id: late, two.id: late, untouched.id: None}


async def test_datetimes_come_back_in_utc_and_naive_ones_are_refused(database: Database) -> None:
    tokyo = timezone(timedelta(hours=9))
    key = await _create(database, expires_at=datetime(2031, 1, 1, 9, 0, tzinfo=tokyo))

    assert key.expires_at == datetime(2031, 1, 1, 0, 0, tzinfo=UTC)
    async with database.session() as session:
        stored = await ApiKeyRepository(session).get(key.id)
    assert stored is not None and stored.expires_at is not None
    assert (stored.expires_at.tzinfo, stored.expires_at.hour) == (UTC, 0)

    with pytest.raises(StatementError, match="no timezone"):
        await _create(database, expires_at=datetime(2031, 1, 1))


@pytest.mark.parametrize(
    ("role", "scopes", "revoked", "expires_in", "expected"),
    [
        ("admin", None, False, None, True),
        ("admin", ["admin", "chat"], False, timedelta(days=1), True),
        ("admin", ["chat"], False, None, False),
        ("admin", None, True, None, False),
        ("admin", None, False, -timedelta(seconds=1), False),
        ("developer", None, False, None, False),
    ],
)
async def test_any_active_admin(
    database: Database,
    role: str,
    scopes: list[str] | None,
    revoked: bool,
    expires_in: timedelta | None,
    expected: bool,
) -> None:
    expires_at = None if expires_in is None else datetime.now(UTC) + expires_in
    async with database.session() as session:
        assert await ApiKeyRepository(session).any_active_admin() is False
    key = await _create(database, role=role, scopes=scopes, expires_at=expires_at)
    if revoked:
        async with database.session() as session:
            await ApiKeyRepository(session).revoke(key.id)

    async with database.session() as session:
        assert await ApiKeyRepository(session).any_active_admin() is expected


async def test_the_plaintext_key_is_stored_nowhere(database: Database) -> None:
    secret = new_secret()
    key = await _create(database, key_hash=secret.hash, display_prefix=secret.display_prefix)
    async with database.session() as session:
        await AuditLog(session).record(
            actor_id="admin1",
            action="api_key.create",
            target_type="api_key",
            target_id=key.id,
            details={"display_prefix": secret.display_prefix},
        )

    async with database.session() as session:
        stored = [
            str(value)
            for table in Base.metadata.sorted_tables
            for row in await session.execute(select(table))
            for value in row
        ]

    assert key.key_hash == hash_secret(secret.plaintext)
    assert stored and not [value for value in stored if secret.plaintext in value]
