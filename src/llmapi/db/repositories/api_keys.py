from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from llmapi.db.models import ApiKey
from llmapi.db.repositories.unset import UNSET, Unset
from llmapi.db.types import UTCDateTime, storable, utc_now
from llmapi.types import RateLimits

ADMIN_ROLE = "admin"
ADMIN_SCOPE = "admin"


def rate_limits_of(key: ApiKey) -> RateLimits:
    """A key's stored limits (a field missing from an older row is unset)."""
    stored = key.rate_limits or {}
    return RateLimits.model_validate({name: stored.get(name) for name in RateLimits.model_fields})


class ApiKeyRepository:
    """API keys by id or hash. Only the SHA-256 of a key ever reaches this class."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(
        self,
        *,
        name: str,
        key_hash: str,
        display_prefix: str,
        role: str,
        scopes: builtins.list[str] | None,
        rate_limits: RateLimits,
        expires_at: datetime | None,
        created_by: str | None,
    ) -> ApiKey:
        key = ApiKey(
            name=name,
            key_hash=key_hash,
            display_prefix=display_prefix,
            role=role,
            scopes=scopes,
            rate_limits=rate_limits.model_dump(),
            expires_at=expires_at,
            created_by=created_by,
        )
        self._session.add(key)
        await self._session.flush()
        return key

    async def get(self, key_id: str) -> ApiKey | None:
        if not storable(key_id):
            return None
        return await self._session.get(ApiKey, key_id)

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, revoked or expired included: the caller checks revocation and expiry."""
        return await self._session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))

    async def list(self, *, include_revoked: bool = False) -> builtins.list[ApiKey]:
        query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
        if not include_revoked:
            query = query.where(ApiKey.revoked_at.is_(None))
        return builtins.list(await self._session.scalars(query))

    async def update(
        self,
        key_id: str,
        *,
        name: str | Unset = UNSET,
        role: str | Unset = UNSET,
        scopes: builtins.list[str] | Unset | None = UNSET,
        rate_limits: RateLimits | Unset = UNSET,
        expires_at: datetime | Unset | None = UNSET,
    ) -> ApiKey | None:
        """Change only the fields given; None clears `scopes` (back to the role's) or `expires_at`."""
        key = await self.get(key_id)
        if key is None:
            return None
        if not isinstance(name, Unset):
            key.name = name
        if not isinstance(role, Unset):
            key.role = role
        if not isinstance(scopes, Unset):
            key.scopes = scopes
        if not isinstance(rate_limits, Unset):
            key.rate_limits = rate_limits.model_dump()
        if not isinstance(expires_at, Unset):
            key.expires_at = expires_at
        await self._session.flush()
        return key

    async def revoke(self, key_id: str) -> ApiKey | None:
        """Revoke the key (keeping the first revocation time); None when there is no such key."""
        key = await self.get(key_id)
        if key is not None and key.revoked_at is None:
            key.revoked_at = utc_now()
            await self._session.flush()
        return key

    async def touch_last_used(self, ids_with_times: Mapping[str, datetime]) -> None:
        """Record when keys were last used: one UPDATE for the batch, never moving a time backwards."""
        if not ids_with_times:
            return
        table = cast(Table, ApiKey.__table__)
        used_at = bindparam("used_at", type_=UTCDateTime())
        statement = (
            update(table)
            .where(table.c.id == bindparam("key_id"))
            .where(or_(table.c.last_used_at.is_(None), table.c.last_used_at < used_at))
            .values(last_used_at=used_at)
        )
        rows: builtins.list[dict[str, Any]] = [
            {"key_id": key_id, "used_at": at} for key_id, at in ids_with_times.items()
        ]
        await self._session.execute(statement, rows)

    async def any_active_admin(self) -> bool:
        """Whether some unrevoked, unexpired key holds the admin role with the admin scope."""
        now = utc_now()
        query = select(ApiKey.scopes).where(
            ApiKey.role == ADMIN_ROLE,
            ApiKey.revoked_at.is_(None),
            or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
        )
        # Scope lists are JSON, which the two databases query differently; admin keys are few.
        return any(scopes is None or ADMIN_SCOPE in scopes for scopes in await self._session.scalars(query))
