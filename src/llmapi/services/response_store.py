"""The responses one principal stored: kept with the conversation that continues them, read back and deleted
by that principal only (another's id is as unknown as one that never was)."""

from __future__ import annotations

from typing import Any

from llmapi.auth.principal import Principal
from llmapi.db.database import Database
from llmapi.db.repositories.responses import ResponseRepository
from llmapi.errors import NotFoundError
from llmapi.protocol.responses import DeletedResponse, ModelResponse


class ResponseStore:
    def __init__(self, db: Database, principal: Principal) -> None:
        self._db = db
        self._owner = {"principal_kind": principal.kind, "principal_id": principal.id}

    async def save(self, response: ModelResponse, conversation: list[dict[str, Any]]) -> None:
        async with self._db.session() as session:
            await ResponseRepository(session).add(
                response_id=response.id,
                model=response.model,
                response=response.model_dump(mode="json"),
                conversation=conversation,
                **self._owner,
            )

    async def get(self, response_id: str) -> ModelResponse:
        async with self._db.session() as session:
            stored = await ResponseRepository(session).get(response_id, **self._owner)
        if stored is None:
            raise _not_found(response_id, "response_id")
        return ModelResponse.model_validate(stored.response)

    async def conversation(self, response_id: str | None) -> list[dict[str, Any]]:
        """The chat messages a response continuing `response_id` starts from; none without one."""
        if response_id is None:
            return []
        async with self._db.session() as session:
            stored = await ResponseRepository(session).get(response_id, **self._owner)
        if stored is None:
            raise _not_found(response_id, "previous_response_id")
        return stored.conversation

    async def delete(self, response_id: str) -> DeletedResponse:
        async with self._db.session() as session:
            deleted = await ResponseRepository(session).delete(response_id, **self._owner)
        if not deleted:
            raise _not_found(response_id, "response_id")
        return DeletedResponse(id=response_id)


def _not_found(response_id: str, param: str) -> NotFoundError:
    return NotFoundError(
        f"No response with id '{response_id[:100]}' is stored for this credential (responses created with "
        "store: false are not kept).",
        param=param,
    )
