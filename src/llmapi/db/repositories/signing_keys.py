from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from llmapi.db.models import SigningKey
from llmapi.db.types import utc_now


class SigningKeyRepository:
    """JWT signing keys: the active ones sign, every stored one verifies and is published in the JWKS.

    A retired key is deleted (private key material included) once every token it signed has expired.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self, *, kid: str, algorithm: str, private_key_pem: str, public_jwk: dict[str, Any]
    ) -> SigningKey:
        key = SigningKey(kid=kid, algorithm=algorithm, private_key_pem=private_key_pem, public_jwk=public_jwk)
        self._session.add(key)
        await self._session.flush()
        return key

    async def active(self) -> builtins.list[SigningKey]:
        """Keys that may sign, newest first."""
        query = (
            select(SigningKey)
            .where(SigningKey.retired_at.is_(None))
            .order_by(SigningKey.created_at.desc(), SigningKey.kid)
        )
        return builtins.list(await self._session.scalars(query))

    async def published(self) -> builtins.list[SigningKey]:
        """Keys whose public half verifies tokens (active and retired), newest first."""
        query = select(SigningKey).order_by(SigningKey.created_at.desc(), SigningKey.kid)
        return builtins.list(await self._session.scalars(query))

    async def retire(self, kid: str) -> SigningKey | None:
        """Stop signing with `kid` (keeping the first retirement time); None when there is no such key."""
        key = await self._session.get(SigningKey, kid)
        if key is not None and key.retired_at is None:
            key.retired_at = utc_now()
            await self._session.flush()
        return key

    async def reencrypt(self, resealed: Callable[[str], str | None]) -> int:
        """Store `resealed(private_key_pem)` instead of each key's private half where it is not None; how
        many were rewritten. An exception from `resealed` rolls the whole unit of work back."""
        rewritten = 0
        for key in await self._session.scalars(select(SigningKey).order_by(SigningKey.kid)):
            replacement = resealed(key.private_key_pem)
            if replacement is not None:
                key.private_key_pem = replacement
                rewritten += 1
        await self._session.flush()
        return rewritten

    async def delete(self, kid: str) -> bool:
        """Delete one key at once, private half included: its tokens stop verifying. False if none."""
        deleted = await self._session.scalars(
            delete(SigningKey).where(SigningKey.kid == kid).returning(SigningKey.kid)
        )
        return deleted.first() is not None

    async def delete_retired_before(self, cutoff: datetime) -> builtins.list[str]:
        """Delete keys retired before `cutoff` (e.g. now minus the longest token lifetime); their kids."""
        statement = (
            delete(SigningKey)
            .where(SigningKey.retired_at.is_not(None), SigningKey.retired_at < cutoff)
            .returning(SigningKey.kid)
        )
        return builtins.list(await self._session.scalars(statement))
