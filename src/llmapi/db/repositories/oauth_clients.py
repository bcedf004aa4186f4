from __future__ import annotations

import builtins

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from llmapi.db.models import OAuthClient, new_id
from llmapi.db.types import storable, utc_now


class OAuthClientRepository:
    """OAuth clients (client-credentials grant). Only the hash of a client secret reaches this class."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(
        self,
        *,
        name: str,
        secret_hash: str,
        display_prefix: str,
        role: str,
        scopes: builtins.list[str],
        created_by: str | None,
        client_id: str | None = None,
    ) -> OAuthClient:
        """A new client; its id is a random hex string unless `client_id` is given."""
        client = OAuthClient(
            id=client_id or new_id(),
            name=name,
            secret_hash=secret_hash,
            display_prefix=display_prefix,
            role=role,
            scopes=scopes,
            created_by=created_by,
        )
        self._session.add(client)
        await self._session.flush()
        return client

    async def get(self, client_id: str) -> OAuthClient | None:
        if not storable(client_id):
            return None
        return await self._session.get(OAuthClient, client_id)

    async def by_id_active(self, client_id: str) -> OAuthClient | None:
        """The client if it exists and is not revoked."""
        if not storable(client_id):
            return None
        query = select(OAuthClient).where(OAuthClient.id == client_id, OAuthClient.revoked_at.is_(None))
        return await self._session.scalar(query)

    async def list(self, *, include_revoked: bool = False) -> builtins.list[OAuthClient]:
        query = select(OAuthClient).order_by(OAuthClient.created_at, OAuthClient.id)
        if not include_revoked:
            query = query.where(OAuthClient.revoked_at.is_(None))
        return builtins.list(await self._session.scalars(query))

    async def revoke(self, client_id: str) -> OAuthClient | None:
        """Revoke the client (keeping the first revocation time); None when there is no such client."""
        client = await self.get(client_id)
        if client is not None and client.revoked_at is None:
            client.revoked_at = utc_now()
            await self._session.flush()
        return client
