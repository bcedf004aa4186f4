from __future__ import annotations

import pytest

from llmapi.db.database import Database
from llmapi.db.repositories.audit_log import AuditLog, SecretInAuditDetailsError


async def test_entries_are_listed_newest_first_up_to_the_limit(database: Database) -> None:
    async with database.session() as session:
        log = AuditLog(session)
        for n in range(5):
            await log.record(
                actor_id="admin1",
                action="api_key.create",
                target_type="api_key",
                target_id=f"key{n}",
                details={"name": f"key {n}", "scopes": ["chat"]},
            )
        await log.record(
            actor_id=None, action="signing_key.rotate", target_type="signing_key", target_id=None
        )

    async with database.session() as session:
        entries = await AuditLog(session).list(limit=3)

    assert [entry.target_id for entry in entries] == [None, "key4", "key3"]
    assert entries[0].details == {} and entries[0].actor_id is None
    assert entries[1].details == {"name": "key 4", "scopes": ["chat"]}
    assert entries[1].at.tzinfo is not None and entries[0].id > entries[1].id


@pytest.mark.parametrize(
    "details",
    [{"plaintext": "llmapi-abc"}, {"changes": {"Client_Secret": "x"}}, {"items": [{"token": "t"}]}],
)
async def test_secret_looking_fields_are_refused(database: Database, details: dict[str, object]) -> None:
    async with database.session() as session:
        with pytest.raises(SecretInAuditDetailsError, match="display prefix"):
            await AuditLog(session).record(
                actor_id="a", action="api_key.create", target_type="api_key", target_id="k", details=details
            )
