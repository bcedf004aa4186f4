"""This server's own access tokens (RFC 9068 JWTs): issued for OAuth clients, verified on every request.

A token must not claim to live (`exp - iat`) longer than this server issues tokens for, plus the leeway:
a longer-lived one, even signed by our key (a key that leaked, or an issuer that was misconfigured once),
is refused rather than trusted for a year.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import jwt

from llmapi.auth.grants import granted_scopes, role_named, scope_string
from llmapi.auth.jwt_errors import refusal
from llmapi.auth.key_ring import KeyRing
from llmapi.auth.principal import Principal
from llmapi.auth.scopes import scopes_for
from llmapi.errors import AuthenticationError, ServiceUnavailableError
from llmapi.types import Role

logger = logging.getLogger(__name__)

TOKEN_TYPE = "at+jwt"
_WHAT = "access token"
_REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti"]
LONGEST_LIFETIME_S = 86_400


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token as the token endpoint returns it (`access_token`, `expires_in`, `scope`)."""

    token: str = field(repr=False)
    expires_in: int
    scope: str


class AccessTokens:
    def __init__(
        self,
        keys: KeyRing,
        *,
        issuer: str,
        audience: str,
        max_lifetime_seconds: int = LONGEST_LIFETIME_S,
        leeway_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._max_lifetime = max_lifetime_seconds
        self._leeway = leeway_seconds
        self._clock = clock

    @property
    def issuer(self) -> str:
        return self._issuer

    def reload_keys_soon(self) -> None:
        """The signing keys changed elsewhere: reload them now, in the background."""
        self._keys.reload_soon()

    async def settled(self) -> None:
        """Wait for a reload of the signing keys in progress, so that `issue` signs with the newest."""
        await self._keys.settled()

    def issue(self, *, subject: str, scopes: Iterable[str], role: Role, ttl_seconds: int) -> IssuedToken:
        """Sign a token with the current key. Raises ScopeError for scopes the role does not grant."""
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
        scope = scope_string(scopes_for(role, list(scopes)))
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": subject,
            "client_id": subject,
            "scope": scope,
            "role": role,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        key = self._keys.current()
        token = jwt.encode(
            claims, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid, "typ": TOKEN_TYPE}
        )
        return IssuedToken(token=token, expires_in=ttl_seconds, scope=scope)

    async def verify(self, token: str) -> Principal:
        """The Principal a valid token stands for; AuthenticationError says what is wrong otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise refusal(exc, what=_WHAT) from None
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise AuthenticationError("The access token was refused: its header has no key id (`kid`).")
        if str(header.get("typ", "")).lower() not in (TOKEN_TYPE, "application/" + TOKEN_TYPE):
            raise AuthenticationError(f"The access token was refused: its header `typ` is not {TOKEN_TYPE}.")
        key = await self._public_key(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[key.algorithm_name],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            raise refusal(exc, what=_WHAT) from None
        lifetime = claims["exp"] - claims["iat"]
        if lifetime > self._max_lifetime + self._leeway:
            raise AuthenticationError(
                f"The access token was refused: its lifetime ({lifetime} s from `iat` to `exp`) is longer "
                f"than this server issues ({self._max_lifetime} s); request a new token.",
                code="invalid_token",
            )
        return _principal(claims)

    async def _public_key(self, kid: str) -> jwt.PyJWK:
        key = self._keys.public_key(kid)
        if key is None and not self._keys.was_withdrawn(kid):
            try:
                await self._keys.refresh()
            except Exception as exc:
                logger.warning("reloading signing keys failed: %s", exc)
                raise ServiceUnavailableError(
                    "The server cannot load its token signing keys; retry."
                ) from None
            key = self._keys.public_key(kid)
        if key is None and self._keys.was_withdrawn(kid):
            raise AuthenticationError(
                "The access token was refused: the key that signed it was retired; request a new token."
            )
        if key is None:
            raise AuthenticationError(
                "The access token was refused: it is signed by a key this server does not know "
                "(retired or never ours); request a new token."
            )
        return key


def _principal(claims: dict[str, Any]) -> Principal:
    subject, role_claim, scope = claims.get("sub"), claims.get("role"), claims.get("scope", "")
    role = role_named(role_claim) if isinstance(role_claim, str) else None
    if not isinstance(subject, str) or role is None or not isinstance(scope, str):
        raise AuthenticationError(
            "The access token was refused: its `sub`, `role` or `scope` claim is invalid."
        )
    return Principal(
        id=subject, kind="oauth_client", name=subject, role=role, scopes=granted_scopes(role, scope.split())
    )
