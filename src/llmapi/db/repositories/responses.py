from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from llmapi.db.models import StoredResponse
from llmapi.db.types import storable


class ResponseRepository:
    """Stored responses, each readable only by the principal (kind and id) that stored it."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self,
        *,
        response_id: str,
        principal_kind: str,
        principal_id: str,
        model: str,
        response: dict[str, Any],
        conversation: list[dict[str, Any]],
    ) -> None:
        self._session.add(
            StoredResponse(
                id=response_id,
                principal_kind=principal_kind,
                principal_id=principal_id,
                model=model,
                response=response,
                conversation=conversation,
            )
        )
        await self._session.flush()

    async def get(self, response_id: str, *, principal_kind: str, principal_id: str) -> StoredResponse | None:
        if not storable(response_id):
            return None
        return await self._session.scalar(
            select(StoredResponse).where(
                StoredResponse.id == response_id,
                StoredResponse.principal_kind == principal_kind,
                StoredResponse.principal_id == principal_id,
            )
        )

    async def delete(self, response_id: str, *, principal_kind: str, principal_id: str) -> bool:
        """Whether there was such a response (of this principal) to delete."""
        if not storable(response_id):
            return False
        result = await self._session.execute(
            delete(StoredResponse).where(
                StoredResponse.id == response_id,
                StoredResponse.principal_kind == principal_kind,
                StoredResponse.principal_id == principal_id,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
