"""The signing keys in use: the newest active key signs, every published key verifies.

Rotation without downtime: `rotate()` adds a key that signs from now on and retires the old one, which stays
published (the store decides for how long) so the tokens it signed keep verifying. `rotate(retire_previous=
True)` deletes the old keys instead (one leaked, say): their tokens stop verifying at once. Other instances
pick changes up with `refresh()`: call it periodically, on an unknown kid, and through `reload_soon()` when
told of a rotation. Reloads happen at most once per `min_refresh_interval`; a caller that comes too early
waits for the next reload instead of being turned away, so a token signed with a brand-new key is never
refused here, and made-up kids cost one reload per interval. A kid that was published here and is no
longer is remembered (`was_withdrawn`), so its tokens are refused without waiting for a reload.

Private keys reach the store encrypted only; `load()` re-encrypts those stored in plain (before encryption
existed) or under a previous secret key.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import jwt

from llmapi.auth.key_encryption import KeyEncryption
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

_REMEMBERED_WITHDRAWALS = 1024


class KeyRingError(RuntimeError):
    """The ring has no key to sign with; the message says what to do."""


class KeyRing:
    def __init__(
        self,
        store: SigningKeyStore,
        *,
        encryption: KeyEncryption,
        algorithm: str = "ES256",
        min_refresh_interval: float = 1.0,
    ) -> None:
        if algorithm not in SIGNING_ALGORITHMS:
            raise ValueError(
                f"unsupported signing algorithm {algorithm!r}; use one of {list(SIGNING_ALGORITHMS)}"
            )
        self._store = store
        self._encryption = encryption
        self._algorithm = algorithm
        self._min_refresh_interval = min_refresh_interval
        self._lock = asyncio.Lock()
        self._signing: SigningKey | None = None
        self._public: Mapping[str, jwt.PyJWK] = {}
        self._published: tuple[dict[str, Any], ...] = ()
        self._withdrawn: dict[str, None] = {}  # insertion-ordered, the oldest forgotten first
        self._last_reload_started = -math.inf
        self._reloads: set[asyncio.Task[None]] = set()

    async def load(self) -> None:
        """Read the keys from the store, creating the first signing key when there is none and
        re-encrypting those not encrypted under the current secret key."""
        async with self._lock:
            if not await self._store.active():
                await self._add_new_key()
            reencrypted = await self._store.reencrypt(self._encryption.resealed)
            if reencrypted:
                logger.info("re-encrypted %d signing keys under the current secret key", reencrypted)
            await self._reload()

    def current(self) -> SigningKey:
        """The key that signs new tokens: the newest active one."""
        if self._signing is None:
            raise KeyRingError("the key ring is not loaded; await KeyRing.load() at start-up")
        return self._signing

    async def rotate(self, *, retire_previous: bool = False) -> SigningKey:
        """A new key signs from now on. The previous ones are retired but stay published, or with
        `retire_previous` are deleted: the tokens they signed stop verifying (here at once; elsewhere once
        `refresh()` or `reload_soon()` runs)."""
        async with self._lock:
            previous = await self._store.active()
            await self._add_new_key()
            for record in previous:
                await (self._store.delete if retire_previous else self._store.retire)(record.kid)
            await self._reload()
        logger.info(
            "signing key rotated; new kid %s%s",
            self.current().kid,
            "; the previous keys are retired at once" if retire_previous else "",
        )
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

    def reload_soon(self) -> None:
        """Reload in the background, at once (another instance rotated); `settled()` waits for it."""
        task = asyncio.get_running_loop().create_task(self._reload_logged(), name="key-ring-reload")
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def settled(self) -> None:
        """Wait for the reloads `reload_soon()` started, if any."""
        if self._reloads:
            await asyncio.gather(*self._reloads, return_exceptions=True)

    def was_withdrawn(self, kid: str) -> bool:
        """Whether `kid` verified tokens here once and no longer does (retired for good, or deleted)."""
        return kid in self._withdrawn

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The JSON Web Key Set to publish: every key that verifies, public members only."""
        return {"keys": [dict(jwk) for jwk in self._published]}

    def public_key(self, kid: str) -> jwt.PyJWK | None:
        return self._public.get(kid)

    async def _reload_logged(self) -> None:
        try:
            await self.refresh(force=True)
        except Exception as exc:
            logger.warning("reloading the signing keys failed (the upkeep retries): %s", exc)

    async def _add_new_key(self) -> None:
        new = generate_signing_key(self._algorithm)
        await self._store.add(
            new.kid, new.algorithm, self._encryption.seal(new.private_key_pem), new.public_jwk
        )

    async def _reload(self) -> None:
        self._last_reload_started = time.monotonic()
        active = await self._store.active()
        if not active:
            raise KeyRingError("the store holds no active signing key; call KeyRing.load() or rotate()")
        newest = max(active, key=lambda record: record.created_at)
        signing = (
            self._signing
            if self._signing and self._signing.kid == newest.kid
            else load_signing_key(newest, self._encryption)
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
        for kid in self._public.keys() - public.keys():
            self._withdrawn[kid] = None
        while len(self._withdrawn) > _REMEMBERED_WITHDRAWALS:
            del self._withdrawn[next(iter(self._withdrawn))]
        self._signing, self._public, self._published = signing, public, tuple(published)
