"""The admin API's use cases: API keys and OAuth clients, each change written to the audit log."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from llmapi.auth.grants import granted_scopes, role_named
from llmapi.auth.principal import Principal
from llmapi.auth.scopes import ScopeError, scopes_for
from llmapi.auth.secrets import CLIENT_SECRET_PREFIX, new_secret
from llmapi.config import Settings
from llmapi.db.database import Database
from llmapi.db.migrate import upgrade
from llmapi.db.models import ApiKey, OAuthClient
from llmapi.db.repositories.api_keys import ApiKeyRepository, rate_limits_of
from llmapi.db.repositories.audit_log import AuditLog
from llmapi.db.repositories.oauth_clients import OAuthClientRepository
from llmapi.db.repositories.unset import UNSET
from llmapi.errors import InvalidRequestError, NotFoundError
from llmapi.protocol.admin import (
    ClientInfo,
    CreateClientRequest,
    CreatedClient,
    CreatedKey,
    CreateKeyRequest,
    KeyInfo,
    UpdateKeyRequest,
)
from llmapi.types import RateLimits, Role

T = TypeVar("T")


class Invalidates(Protocol):
    async def invalidate(self, credential_id: str) -> bool: ...


def _role(name: str) -> Role:
    return role_named(name) or "service"


def _checked_scopes(role: Role, scopes: list[str] | None) -> list[str] | None:
    try:
        return None if scopes is None else sorted(s.value for s in scopes_for(role, scopes))
    except ScopeError as exc:
        raise InvalidRequestError(str(exc), param="scopes") from exc


def key_info(key: ApiKey) -> KeyInfo:
    role = _role(key.role)
    return KeyInfo(
        id=key.id,
        name=key.name,
        display_prefix=key.display_prefix,
        role=role,
        scopes=sorted(s.value for s in granted_scopes(role, key.scopes)),
        rate_limits=rate_limits_of(key),
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
    )


def client_info(client: OAuthClient) -> ClientInfo:
    role = _role(client.role)
    return ClientInfo(
        client_id=client.id,
        name=client.name,
        role=role,
        scopes=sorted(s.value for s in granted_scopes(role, client.scopes)),
        created_at=client.created_at,
        revoked_at=client.revoked_at,
    )


class AdminService:
    def __init__(self, db: Database, invalidation: Invalidates) -> None:
        self._db = db
        self._invalidation = invalidation

    async def create_key(self, *, actor: Principal, body: CreateKeyRequest) -> CreatedKey:
        scopes = _checked_scopes(body.role, body.scopes)
        secret = new_secret()
        async with self._db.session() as session:
            key = await ApiKeyRepository(session).create(
                name=body.name,
                key_hash=secret.hash,
                display_prefix=secret.display_prefix,
                role=body.role,
                scopes=scopes,
                rate_limits=body.rate_limits or RateLimits(),
                expires_at=body.expires_at,
                created_by=actor.id,
            )
            await self._audit(session, actor, "api_key.create", "api_key", key.id, {"role": body.role})
        return CreatedKey(**key_info(key).model_dump(), key=secret.plaintext)

    async def list_keys(self, *, include_revoked: bool) -> list[KeyInfo]:
        async with self._db.session() as session:
            return [
                key_info(k) for k in await ApiKeyRepository(session).list(include_revoked=include_revoked)
            ]

    async def get_key(self, key_id: str) -> KeyInfo:
        async with self._db.session() as session:
            return key_info(self._found(await ApiKeyRepository(session).get(key_id), "API key", key_id))

    async def update_key(self, *, actor: Principal, key_id: str, body: UpdateKeyRequest) -> KeyInfo:
        given = body.model_fields_set
        async with self._db.session() as session:
            repository = ApiKeyRepository(session)
            key = self._found(await repository.get(key_id), "API key", key_id)
            role = body.role if body.role is not None else _role(key.role)
            scopes = body.scopes if "scopes" in given else key.scopes
            updated = await repository.update(
                key_id,
                name=body.name if body.name is not None else UNSET,
                role=role,
                scopes=_checked_scopes(role, scopes),
                rate_limits=(body.rate_limits or RateLimits()) if "rate_limits" in given else UNSET,
                expires_at=body.expires_at if "expires_at" in given else UNSET,
            )
            await self._audit(session, actor, "api_key.update", "api_key", key_id, {"fields": sorted(given)})
        await self._invalidation.invalidate(key_id)
        return key_info(self._found(updated, "API key", key_id))

    async def revoke_key(self, *, actor: Principal, key_id: str) -> KeyInfo:
        async with self._db.session() as session:
            key = self._found(await ApiKeyRepository(session).revoke(key_id), "API key", key_id)
            await self._audit(session, actor, "api_key.revoke", "api_key", key_id, {})
        await self._invalidation.invalidate(key_id)
        return key_info(key)

    async def create_client(self, *, actor: Principal, body: CreateClientRequest) -> CreatedClient:
        # Not given: the role's scopes. An empty list is an answer too: no scope (as for API keys).
        checked = _checked_scopes(body.role, body.scopes)
        scopes = sorted(s.value for s in scopes_for(body.role)) if checked is None else checked
        secret = new_secret(CLIENT_SECRET_PREFIX)
        async with self._db.session() as session:
            client = await OAuthClientRepository(session).create(
                name=body.name,
                secret_hash=secret.hash,
                display_prefix=secret.display_prefix,
                role=body.role,
                scopes=scopes,
                created_by=actor.id,
            )
            await self._audit(
                session, actor, "oauth_client.create", "oauth_client", client.id, {"scopes": scopes}
            )
        return CreatedClient(**client_info(client).model_dump(), client_secret=secret.plaintext)

    async def list_clients(self, *, include_revoked: bool) -> list[ClientInfo]:
        async with self._db.session() as session:
            repository = OAuthClientRepository(session)
            return [client_info(c) for c in await repository.list(include_revoked=include_revoked)]

    async def get_client(self, client_id: str) -> ClientInfo:
        async with self._db.session() as session:
            client = await OAuthClientRepository(session).get(client_id)
            return client_info(self._found(client, "OAuth client", client_id))

    async def revoke_client(self, *, actor: Principal, client_id: str) -> ClientInfo:
        async with self._db.session() as session:
            client = await OAuthClientRepository(session).revoke(client_id)
            self._found(client, "OAuth client", client_id)
            await self._audit(session, actor, "oauth_client.revoke", "oauth_client", client_id, {})
        await self._invalidation.invalidate(client_id)  # its access tokens stop working everywhere
        return client_info(self._found(client, "OAuth client", client_id))

    @staticmethod
    def _found(value: T | None, what: str, identifier: str) -> T:
        if value is None:
            raise NotFoundError(f"There is no {what} with id '{identifier}'.", code="not_found")
        return value

    @staticmethod
    async def _audit(
        session: AsyncSession,
        actor: Principal,
        action: str,
        target_type: str,
        target_id: str,
        details: dict[str, Any],
    ) -> None:
        await AuditLog(session).record(
            actor_id=actor.id, action=action, target_type=target_type, target_id=target_id, details=details
        )


CLI_PRINCIPAL = Principal(
    id="cli", kind="anonymous", name="llmapi keys create", role="admin", scopes=frozenset()
)


async def create_key_offline(
    settings: Settings, *, name: str, role: Role, scopes: list[str] | None
) -> CreatedKey:
    """`llmapi keys create`: straight to the database (migrated first), audited as the CLI."""
    db = Database(settings.database_url)
    try:
        await upgrade(settings.database_url)
        service = AdminService(db, _NoCache())
        return await service.create_key(
            actor=CLI_PRINCIPAL, body=CreateKeyRequest(name=name, role=role, scopes=scopes)
        )
    finally:
        await db.dispose()


class _NoCache:
    async def invalidate(self, credential_id: str) -> bool:
        return True
