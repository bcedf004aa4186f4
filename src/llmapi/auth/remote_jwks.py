"""An identity provider's JSON Web Key Set, fetched over HTTP and cached.

Fetched on first use, again when older than `max_age`, and on an unknown kid at most once per
`min_refetch_interval` (so tokens with made-up kids cannot make this server hammer the provider).
Only asymmetric signing keys are kept: a JWK of type `oct` (HS*) or alg `none` is ignored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import jwt

from llmapi.errors import ServiceUnavailableError

logger = logging.getLogger(__name__)

_ASYMMETRIC_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})
_MAX_JWKS_BYTES = 1 << 20


class JWKSFetchError(Exception):
    """The key set could not be fetched or read."""


class RemoteJWKS:
    def __init__(
        self,
        url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout_seconds: float = 5.0,
        min_refetch_interval: float = 30.0,
        max_age: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._min_refetch_interval = min_refetch_interval
        self._max_age = max_age
        self._clock = clock
        self._lock = asyncio.Lock()
        self._keys: Mapping[str | None, jwt.PyJWK] = {}
        self._fetched_at = -math.inf
        self._attempted_at = -math.inf

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        """The key with this kid (None: the only key, when the set holds exactly one)."""
        fresh = self._clock() - self._fetched_at < self._max_age
        found = self._lookup(kid) if fresh else None
        if found is None:
            await self._fetch()
            found = self._lookup(kid)
        if found is None and not self._keys:
            raise ServiceUnavailableError(
                "The identity provider's signing keys are unavailable (fetch failed or none usable); retry."
            )
        return found

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _lookup(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def _fetch(self) -> None:
        """Fetch the set unless attempted within `min_refetch_interval`; keep the old set on failure."""
        async with self._lock:
            if self._clock() - self._attempted_at < self._min_refetch_interval:
                return
            self._attempted_at = self._clock()
            try:
                self._keys = _usable_keys(await self._get())
                self._fetched_at = self._clock()
            except JWKSFetchError as exc:
                logger.warning("fetching the identity provider's keys from %s failed: %s", self._url, exc)

    async def _get(self) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.get(self._url, timeout=self._timeout) as response:
                if response.status != 200:
                    raise JWKSFetchError(f"HTTP {response.status}")
                body = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    body += chunk
                    if len(body) > _MAX_JWKS_BYTES:
                        raise JWKSFetchError(f"the key set is larger than {_MAX_JWKS_BYTES} bytes")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise JWKSFetchError(f"{type(exc).__name__}: {exc}") from exc
        try:
            return json.loads(bytes(body))
        except ValueError as exc:
            raise JWKSFetchError("the key set is not JSON") from exc


def _usable_keys(document: Any) -> dict[str | None, jwt.PyJWK]:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JWKSFetchError('the key set is not a JSON object with a "keys" list')
    keys: dict[str | None, jwt.PyJWK] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("kty") not in _ASYMMETRIC_KEY_TYPES:
            continue
        if jwk.get("use", "sig") != "sig" or str(jwk.get("alg", "")).upper().startswith(("HS", "NONE")):
            continue
        try:
            key = jwt.PyJWK(jwk)
        except jwt.PyJWTError as exc:
            logger.info("ignoring an unusable key in the identity provider's key set: %s", exc)
            continue
        keys[key.key_id] = key
    return keys
