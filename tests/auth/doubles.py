"""In-memory stand-ins for our own storage (the repositories in llmapi.db), shaped by the auth Protocols."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from llmapi.auth.key_encryption import KeyEncryption
from llmapi.auth.secrets import CLIENT_SECRET_PREFIX, hash_secret, new_secret
from llmapi.types import RateLimits

# The secret key that encrypts the signing keys of these tests at rest.
ENCRYPTION = KeyEncryption(secrets.token_urlsafe(32))


@dataclass
class StoredSigningKey:
    kid: str
    algorithm: str
    private_key_pem: str
    public_jwk: dict[str, Any]
    created_at: datetime
    retired_at: datetime | None = None


class MemorySigningKeyStore:
    def __init__(self, *, retention: timedelta = timedelta(hours=1)) -> None:
        self.keys: dict[str, StoredSigningKey] = {}
        self.retention = retention
        self.reads = 0

    async def add(
        self, kid: str, algorithm: str, private_key_pem: str, public_jwk: dict[str, Any]
    ) -> StoredSigningKey:
        newest = max((key.created_at for key in self.keys.values()), default=None)
        created_at = datetime.now(UTC)
        if newest is not None and created_at <= newest:
            created_at = newest + timedelta(microseconds=1)
        self.keys[kid] = StoredSigningKey(kid, algorithm, private_key_pem, public_jwk, created_at)
        return self.keys[kid]

    async def active(self) -> list[StoredSigningKey]:
        self.reads += 1
        return [key for key in self.keys.values() if key.retired_at is None]

    async def published(self) -> list[StoredSigningKey]:
        now = datetime.now(UTC)
        return [
            key
            for key in self.keys.values()
            if key.retired_at is None or now - key.retired_at < self.retention
        ]

    async def retire(self, kid: str) -> None:
        self.keys[kid].retired_at = datetime.now(UTC)

    async def delete(self, kid: str) -> None:
        self.keys.pop(kid, None)

    async def reencrypt(self, resealed: Callable[[str], str | None]) -> int:
        replaced = {kid: resealed(key.private_key_pem) for kid, key in self.keys.items()}
        for kid, pem in replaced.items():
            if pem is not None:
                self.keys[kid].private_key_pem = pem
        return sum(pem is not None for pem in replaced.values())


@dataclass
class StoredApiKey:
    id: str
    name: str
    key_hash: str
    role: str
    scopes: list[str] | None = None
    rate_limits: RateLimits = field(default_factory=RateLimits)
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass
class MemoryApiKeys:
    keys: dict[str, StoredApiKey] = field(default_factory=dict)
    lookups: int = 0

    def create(self, role: str = "developer", **fields: Any) -> tuple[str, StoredApiKey]:
        secret = new_secret()
        record = StoredApiKey(
            id=f"key_{len(self.keys) + 1}", name="test key", key_hash=secret.hash, role=role, **fields
        )
        self.keys[secret.hash] = record
        return secret.plaintext, record

    def revoke(self, key_id: str) -> None:
        for record in self.keys.values():
            if record.id == key_id:
                record.revoked_at = datetime.now(UTC)

    async def by_hash(self, key_hash: str) -> StoredApiKey | None:
        self.lookups += 1
        return self.keys.get(key_hash)


@dataclass
class StoredClient:
    id: str
    secret_hash: str
    role: str
    scopes: list[str] | None = None


@dataclass
class MemoryClients:
    clients: dict[str, StoredClient] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)
    lookups: int = 0

    def create(self, client_id: str, role: str = "service", scopes: list[str] | None = None) -> str:
        secret = new_secret(CLIENT_SECRET_PREFIX)
        self.clients[client_id] = StoredClient(client_id, hash_secret(secret.plaintext), role, scopes)
        return secret.plaintext

    def revoke(self, client_id: str) -> None:
        self.revoked.add(client_id)

    async def by_id_active(self, client_id: str) -> StoredClient | None:
        self.lookups += 1
        return None if client_id in self.revoked else self.clients.get(client_id)
