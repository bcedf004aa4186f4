"""One credential in, one Principal out: the bootstrap admin key, an API key, or a JWT access token.

Our own access tokens stand only while their OAuth client does: a revoked client's tokens are refused,
with the same caching and invalidation as API keys (key and client ids share one channel; both are
random hex, and forgetting an id that is not cached costs nothing).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from datetime import datetime

from llmapi.auth.access_tokens import AccessTokens
from llmapi.auth.api_keys import ApiKeyLookup, ApiKeyResolver
from llmapi.auth.client_status import ClientStatus
from llmapi.auth.external_idp import ExternalIdP
from llmapi.auth.invalidation import EVERYTHING, SIGNING_KEYS, Invalidation
from llmapi.auth.jwt_inspect import looks_like_jwt, unverified_issuer
from llmapi.auth.oauth import OAuthClientLookup
from llmapi.auth.principal import Principal
from llmapi.auth.scopes import ROLE_SCOPES
from llmapi.auth.secrets import API_KEY_PREFIX, CLIENT_SECRET_PREFIX, hash_secret
from llmapi.errors import AuthenticationError

logger = logging.getLogger(__name__)

BOOTSTRAP_ADMIN = Principal(
    id="admin:bootstrap",
    kind="api_key",
    name="bootstrap admin key",
    role="admin",
    scopes=ROLE_SCOPES["admin"],
)


class Authenticator:
    def __init__(
        self,
        *,
        api_keys: ApiKeyLookup,
        clients: OAuthClientLookup,
        tokens: AccessTokens,
        external: ExternalIdP | None,
        admin_key: str | None,
        cache_ttl: float,
        invalidation: Invalidation | None,
        negative_cache_ttl: float = 5.0,
        max_cache_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = ApiKeyResolver(
            api_keys,
            cache_ttl=cache_ttl,
            negative_cache_ttl=negative_cache_ttl,
            max_entries=max_cache_entries,
            clock=clock,
        )
        self._clients = ClientStatus(
            clients,
            cache_ttl=cache_ttl,
            negative_cache_ttl=negative_cache_ttl,
            max_entries=max_cache_entries,
            clock=clock,
        )
        self._tokens = tokens
        self._external = external
        self._admin_hash = hash_secret(admin_key) if admin_key else None
        self._invalidation = invalidation

    async def start(self) -> None:
        """Listen for invalidations from other instances (a background task; returns at once)."""
        if self._invalidation is not None:
            await self._invalidation.start(self._forget)

    async def close(self) -> None:
        """Stop listening and close the external provider's HTTP session."""
        if self._invalidation is not None:
            await self._invalidation.close()
        if self._external is not None:
            await self._external.close()

    async def authenticate(self, credential: str | None) -> Principal:
        if not credential:
            raise AuthenticationError(
                "Missing credentials: send `Authorization: Bearer <key>` or `x-api-key: <key>`.",
                code="missing_api_key",
            )
        credential_hash = hash_secret(credential)
        if self._admin_hash is not None and hmac.compare_digest(credential_hash, self._admin_hash):
            return BOOTSTRAP_ADMIN
        if credential.startswith(CLIENT_SECRET_PREFIX):
            raise AuthenticationError(
                "That is an OAuth client secret, not an API key: exchange it for an access token at the "
                "token endpoint (grant_type=client_credentials) and send the token instead."
            )
        if credential.startswith(API_KEY_PREFIX):
            return await self._keys.resolve(credential_hash, use_cache=self._caching)
        if looks_like_jwt(credential):
            return await self._verify_token(credential)
        raise AuthenticationError(
            f"The credential is neither an API key (they start with `{API_KEY_PREFIX}`) "
            "nor a JWT access token."
        )

    async def invalidate(self, credential_id: str) -> bool:
        """Forget an API key or OAuth client (by id; "*": every one) here and tell the other instances;
        False if they were not told."""
        self._forget(credential_id)
        return await self._publish(credential_id)

    async def announce_signing_keys(self) -> bool:
        """Tell the other instances to reload the signing keys now (after a rotation); False if not told."""
        return await self._publish(SIGNING_KEYS)

    def drain_last_used(self) -> dict[str, datetime]:
        """API key id -> last accepted, since the previous drain; write these in one batch."""
        return self._keys.drain_last_used()

    async def _publish(self, message: str) -> bool:
        if self._invalidation is None:
            return True
        try:
            await self._invalidation.publish(message)
        except Exception as exc:
            logger.warning("could not tell the other instances (%s): %s", message, exc)
            return False
        return True

    def _forget(self, message: str) -> None:
        """One message of the invalidation channel: an id, "*" (everything) or SIGNING_KEYS."""
        if message in (EVERYTHING, SIGNING_KEYS):
            self._tokens.reload_keys_soon()  # after "*", a rotation may have been missed
        if message != SIGNING_KEYS:
            self._keys.evict(message)
            self._clients.evict(message)

    @property
    def _caching(self) -> bool:
        """Cache only while invalidations can arrive; otherwise a revocation elsewhere would go unseen."""
        return self._invalidation is None or self._invalidation.listening

    async def _verify_token(self, token: str) -> Principal:
        issuer = unverified_issuer(token)
        if issuer is None:
            raise AuthenticationError(
                "The token was refused: it is malformed or has no `iss` claim.", code="invalid_token"
            )
        if issuer == self._tokens.issuer:
            principal = await self._tokens.verify(token)
            await self._clients.require_active(principal.id, use_cache=self._caching)
            return principal
        if self._external is not None and issuer == self._external.issuer:
            return await self._external.verify(token)
        raise AuthenticationError(
            "The token was refused: its issuer is not one this server trusts.", code="invalid_token"
        )
