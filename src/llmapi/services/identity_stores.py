"""The database behind authentication: each lookup is its own short unit of work.

The auth package states what it needs as Protocols (ApiKeyLookup, OAuthClientLookup, SigningKeyStore);
these adapters meet them with the repositories.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from llmapi.db.database import Database
from llmapi.db.models import ApiKey, OAuthClient, SigningKey
from llmapi.db.repositories.api_keys import ApiKeyRepository, rate_limits_of
from llmapi.db.repositories.oauth_clients import OAuthClientRepository
from llmapi.db.repositories.signing_keys import SigningKeyRepository
from llmapi.types import RateLimits


@dataclass(frozen=True, slots=True)
class StoredApiKey:
    """What authentication reads of a key row, detached from the ORM."""

    id: str
    name: str
    role: str
    scopes: Sequence[str] | None
    rate_limits: RateLimits
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> StoredApiKey:
        return cls(
            key.id, key.name, key.role, key.scopes, rate_limits_of(key), key.expires_at, key.revoked_at
        )


class ApiKeysInDatabase:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def by_hash(self, key_hash: str) -> StoredApiKey | None:
        async with self._db.session() as session:
            key = await ApiKeyRepository(session).by_hash(key_hash)
        return None if key is None else StoredApiKey.of(key)

    async def touch_last_used(self, ids_with_times: Mapping[str, datetime]) -> None:
        async with self._db.session() as session:
            await ApiKeyRepository(session).touch_last_used(ids_with_times)


class OAuthClientsInDatabase:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def by_id_active(self, client_id: str) -> OAuthClient | None:
        async with self._db.session() as session:
            return await OAuthClientRepository(session).by_id_active(client_id)


class SigningKeysInDatabase:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self, kid: str, algorithm: str, private_key_pem: str, public_jwk: dict[str, Any]
    ) -> SigningKey:
        async with self._db.session() as session:
            return await SigningKeyRepository(session).add(
                kid=kid, algorithm=algorithm, private_key_pem=private_key_pem, public_jwk=public_jwk
            )

    async def active(self) -> list[SigningKey]:
        async with self._db.session() as session:
            return await SigningKeyRepository(session).active()

    async def published(self) -> list[SigningKey]:
        async with self._db.session() as session:
            return await SigningKeyRepository(session).published()

    async def retire(self, kid: str) -> None:
        async with self._db.session() as session:
            await SigningKeyRepository(session).retire(kid)

    async def delete(self, kid: str) -> None:
        async with self._db.session() as session:
            await SigningKeyRepository(session).delete(kid)

    async def reencrypt(self, resealed: Callable[[str], str | None]) -> int:
        async with self._db.session() as session:
            return await SigningKeyRepository(session).reencrypt(resealed)
