from __future__ import annotations

from llmapi.db.database import Database
from llmapi.db.repositories.responses import ResponseRepository

OWNER = {"principal_kind": "api_key", "principal_id": "key-a"}
CONVERSATION = [{"role": "user", "content": "hi \x00 \u2028 é"}, {"role": "assistant", "content": None}]


async def test_a_stored_response_is_its_owner_s_only(database: Database) -> None:
    async with database.session() as session:
        await ResponseRepository(session).add(
            response_id="resp_1", model="m", response={"id": "resp_1"}, conversation=CONVERSATION, **OWNER
        )
    async with database.session() as session:
        repository = ResponseRepository(session)
        stored = await repository.get("resp_1", **OWNER)
        assert stored is not None
        assert (stored.response, stored.conversation, stored.model) == ({"id": "resp_1"}, CONVERSATION, "m")
        assert await repository.get("resp_1", principal_kind="api_key", principal_id="key-b") is None
        assert await repository.get("resp_1", principal_kind="oauth_client", principal_id="key-a") is None
        assert not await repository.delete("resp_1", principal_kind="api_key", principal_id="key-b")
        assert await repository.get("resp_1\x00", **OWNER) is None
        assert not await repository.delete("resp_1\x00", **OWNER)
    async with database.session() as session:
        assert await ResponseRepository(session).delete("resp_1", **OWNER)
    async with database.session() as session:
        assert await ResponseRepository(session).get("resp_1", **OWNER) is None
        assert not await ResponseRepository(session).delete("resp_1", **OWNER)
