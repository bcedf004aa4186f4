"""The signing keys in use: the newest active key signs, every published key verifies.

Rotation without downtime: `rotate()` adds a key that signs from now on and retires the old one, which stays
published (the store decides for how long) so the tokens it signed keep verifying. Other instances pick the
new key up with `refresh()`: call it periodically, and on an unknown kid. Reloads happen at most once per
`min_refresh_interval`; a caller that comes too early waits for the next reload instead of being turned away,
so a token signed with a brand-new key is never refused here, and made-up kids cost one reload per interval.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import jwt

from llmapi.auth.signing_keys import (
    SIGNING_ALGORITHMS,
    PublishedKeyRecord,
    SigningKey,
    SigningKeyStore,
    generate_signing_key,
    load_signing_key,
    public_jwk_of,
)

logger = logging.getLogger(__name__)


class KeyRingError(RuntimeError):
    """The ring has no key to sign with; the message says what to do."""


class KeyRing:
    def __init__(
        self,
        store: SigningKeyStore,
        *,
        algorithm: str = "ES256",
        min_refresh_interval: float = 1.0,
    ) -> None:
        if algorithm not in SIGNING_ALGORITHMS:
            raise ValueError(
                f"unsupported signing algorithm {algorithm!r}; use one of {list(SIGNING_ALGORITHMS)}"
            )
        self._store = store
        self._algorithm = algorithm
        self._min_refresh_interval = min_refresh_interval
        self._lock = asyncio.Lock()
        self._signing: SigningKey | None = None
        self._public: Mapping[str, jwt.PyJWK] = {}
        self._published: tuple[dict[str, Any], ...] = ()
        self._last_reload_started = -math.inf

    async def load(self) -> None:
        """Read the keys from the store, creating the first signing key when there is none."""
        async with self._lock:
            if not await self._store.active():
                await self._add_new_key()
            await self._reload()

    def current(self) -> SigningKey:
        """The key that signs new tokens: the newest active one."""
        if self._signing is None:
            raise KeyRingError("the key ring is not loaded; await KeyRing.load() at start-up")
        return self._signing

    async def rotate(self) -> SigningKey:
        """A new key signs from now on; the previous ones are retired but stay published."""
        async with self._lock:
            previous = await self._store.active()
            await self._add_new_key()
            for record in previous:
                await self._store.retire(record.kid)
            await self._reload()
        logger.info("signing key rotated; new kid %s", self.current().kid)
        return self.current()

    async def refresh(self, *, force: bool = False) -> None:
        """Reload from the store. Unless forced, at most once per `min_refresh_interval`: an early caller
        waits, and a reload that started after the call was made serves it."""
        asked_at = time.monotonic()
        if not force:
            wait = self._last_reload_started + self._min_refresh_interval - asked_at
            if wait > 0:
                await asyncio.sleep(wait)
        async with self._lock:
            if not force and self._last_reload_started >= asked_at:
                return
            await self._reload()

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The JSON Web Key Set to publish: every key that verifies, public members only."""
        return {"keys": [dict(jwk) for jwk in self._published]}

    def public_key(self, kid: str) -> jwt.PyJWK | None:
        return self._public.get(kid)

    async def _add_new_key(self) -> None:
        new = generate_signing_key(self._algorithm)
        await self._store.add(new.kid, new.algorithm, new.private_key_pem, new.public_jwk)

    async def _reload(self) -> None:
        self._last_reload_started = time.monotonic()
        active = await self._store.active()
        if not active:
            raise KeyRingError("the store holds no active signing key; call KeyRing.load() or rotate()")
        newest = max(active, key=lambda record: record.created_at)
        signing = (
            self._signing if self._signing and self._signing.kid == newest.kid else load_signing_key(newest)
        )
        records: dict[str, PublishedKeyRecord] = {
            record.kid: record for record in await self._store.published()
        }
        records.update({record.kid: record for record in active})
        public: dict[str, jwt.PyJWK] = {}
        published: list[dict[str, Any]] = []
        for kid, record in records.items():
            jwk = public_jwk_of(record)
            try:
                public[kid] = jwt.PyJWK(jwk, algorithm=record.algorithm)
            except jwt.PyJWTError as exc:
                logger.warning("signing key %s is unusable and not published: %s", kid, exc)
                continue
            published.append(jwk)
        self._signing, self._public, self._published = signing, public, tuple(published)
