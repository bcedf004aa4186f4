from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from llmapi.db.models import AuditEntry

# Field names that would only ever hold a credential: refused, so a careless caller fails loudly in tests.
SECRET_FIELD_NAMES = frozenset(
    {"key", "api_key", "plaintext", "secret", "client_secret", "password", "token", "private_key_pem"}
)


class SecretInAuditDetailsError(ValueError):
    """Audit details must describe an action, never carry the credential it made or used."""


class AuditLog:
    """Who did what to which object, appended in the caller's unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record(
        self,
        *,
        actor_id: str | None,
        action: str,
        target_type: str,
        target_id: str | None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        details = dict(details or {})
        _refuse_secret_fields(details)
        entry = AuditEntry(
            actor_id=actor_id, action=action, target_type=target_type, target_id=target_id, details=details
        )
        self._session.add(entry)
        await self._session.flush()
        return entry

    async def list(self, *, limit: int = 100) -> builtins.list[AuditEntry]:
        """The newest entries first."""
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        return builtins.list(await self._session.scalars(query))


def _refuse_secret_fields(value: Any) -> None:
    if isinstance(value, Mapping):
        named = sorted(SECRET_FIELD_NAMES.intersection(str(name).lower() for name in value))
        if named:
            raise SecretInAuditDetailsError(
                f"audit details may not contain {named}; record the key id or display prefix instead"
            )
        for nested in value.values():
            _refuse_secret_fields(nested)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_secret_fields(item)
