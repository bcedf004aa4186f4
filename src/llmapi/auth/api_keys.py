"""API keys: looked up by hash, refused when revoked or expired, and cached briefly in-process.

Caching. A valid key is cached for `cache_ttl` seconds; a refused one for `negative_cache_ttl` (default 5 s,
never longer than `cache_ttl`) in a separate cache, so a flood of bad keys cannot push valid ones out.
A new key is never held back by a refusal cached earlier: its hash was never looked up before (256 random
bits), and `evict("*")` drops every entry anyway. `evict(key_id)` drops both kinds of entry of that key, and a
lookup that raced with an eviction is not cached, so a revocation is seen at once after `evict`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from llmapi.auth.grants import granted_scopes, role_named
from llmapi.auth.principal import Principal
from llmapi.auth.ttl_cache import TTLCache
from llmapi.errors import AuthenticationError
from llmapi.types import RateLimits

EVERY_KEY = "*"


class ApiKeyRecord(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def scopes(self) -> Sequence[str] | None: ...
    @property
    def rate_limits(self) -> RateLimits: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def revoked_at(self) -> datetime | None: ...


class ApiKeyLookup(Protocol):
    async def by_hash(self, key_hash: str) -> ApiKeyRecord | None: ...


@dataclass(frozen=True, slots=True)
class _Accepted:
    principal: Principal
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Refused:
    key_id: str | None
    message: str
    code: str

    def error(self) -> AuthenticationError:
        return AuthenticationError(self.message, code=self.code)


class ApiKeyResolver:
    def __init__(
        self,
        keys: ApiKeyLookup,
        *,
        cache_ttl: float,
        negative_cache_ttl: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = keys
        self._cache_ttl = cache_ttl
        self._negative_cache_ttl = min(negative_cache_ttl, cache_ttl)
        self._accepted: TTLCache[str, _Accepted] = TTLCache(max_entries=max_entries, clock=clock)
        self._refused: TTLCache[str, _Refused] = TTLCache(max_entries=max_entries, clock=clock)
        self._evictions = 0
        self._last_used: dict[str, datetime] = {}

    async def resolve(self, key_hash: str, *, use_cache: bool = True) -> Principal:
        """The Principal of the key with this hash; AuthenticationError when unknown, revoked or expired."""
        now = datetime.now(UTC)
        verdict = self._cached(key_hash) if use_cache else None
        if verdict is None:
            evictions_before = self._evictions
            verdict = _judge(await self._keys.by_hash(key_hash), now)
            if use_cache and self._evictions == evictions_before:
                self._remember(key_hash, verdict)
        if isinstance(verdict, _Refused):
            raise verdict.error()
        if verdict.expires_at is not None and verdict.expires_at <= now:
            raise _expired(verdict.expires_at).error()
        self._last_used[verdict.principal.id] = now
        return verdict.principal

    def evict(self, key_id: str) -> None:
        """Forget what is cached about one key (by id), or about every key with "*"."""
        self._evictions += 1
        if key_id == EVERY_KEY:
            self._accepted.clear()
            self._refused.clear()
            return
        self._accepted.evict_where(lambda entry: entry.principal.id == key_id)
        self._refused.evict_where(lambda entry: entry.key_id == key_id)

    def drain_last_used(self) -> dict[str, datetime]:
        """Key id -> when it was last accepted, since the previous drain (for one batched write)."""
        drained, self._last_used = self._last_used, {}
        return drained

    def _cached(self, key_hash: str) -> _Accepted | _Refused | None:
        accepted = self._accepted.get(key_hash)
        return accepted if accepted is not None else self._refused.get(key_hash)

    def _remember(self, key_hash: str, verdict: _Accepted | _Refused) -> None:
        if isinstance(verdict, _Accepted):
            self._accepted.put(key_hash, verdict, self._cache_ttl)
        else:
            self._refused.put(key_hash, verdict, self._negative_cache_ttl)


def _judge(record: ApiKeyRecord | None, now: datetime) -> _Accepted | _Refused:
    if record is None:
        return _Refused(
            None,
            "The API key is not valid: it is unknown or was deleted. Check the key you send, or ask an "
            "administrator for one.",
            "invalid_api_key",
        )
    if record.revoked_at is not None:
        return _Refused(
            record.id, "The API key was revoked; ask an administrator for a new one.", "api_key_revoked"
        )
    expires_at = _aware(record.expires_at)
    if expires_at is not None and expires_at <= now:
        return _expired(expires_at, record.id)
    role = role_named(record.role)
    if role is None:
        return _Refused(
            record.id,
            "The API key has a role this server does not know; ask an administrator to fix the key.",
            "invalid_api_key",
        )
    principal = Principal(
        id=record.id,
        kind="api_key",
        name=record.name,
        role=role,
        scopes=granted_scopes(role, record.scopes),
        rate_limits=record.rate_limits,
    )
    return _Accepted(principal, expires_at)


def _expired(expires_at: datetime, key_id: str | None = None) -> _Refused:
    return _Refused(
        key_id,
        f"The API key expired at {expires_at.isoformat()}; ask an administrator for a new one.",
        "api_key_expired",
    )


def _aware(moment: datetime | None) -> datetime | None:
    """Databases without time zones (SQLite) hand back naive datetimes; they are UTC here."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment
