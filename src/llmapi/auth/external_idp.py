"""Access tokens of an external OpenID Connect provider, mapped to this server's scopes.

The provider's scope (or groups) claim is translated through `scope_map`; unmapped names grant nothing, and
the result is narrowed to the configured role's scopes. The Principal's id is "ext:" + the token's `sub`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aiohttp
import jwt

from llmapi.auth.grants import granted_scopes
from llmapi.auth.jwt_errors import refusal
from llmapi.auth.principal import Principal
from llmapi.auth.remote_jwks import RemoteJWKS
from llmapi.auth.scopes import ScopeError, parse_scopes
from llmapi.config import ConfigError, OIDCSettings
from llmapi.errors import AuthenticationError

_WHAT = "identity provider's token"
_REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]


class ExternalIdP:
    def __init__(
        self,
        settings: OIDCSettings,
        *,
        session: aiohttp.ClientSession | None = None,
        leeway_seconds: float = 30.0,
        min_refetch_interval: float = 30.0,
    ) -> None:
        for name, ours in settings.scope_map.items():
            try:
                parse_scopes(ours)
            except ScopeError as exc:
                raise ConfigError(f"oidc.scope_map[{name!r}]: {exc}") from None
        self._settings = settings
        self._leeway = leeway_seconds
        self._jwks = RemoteJWKS(settings.jwks_url, session=session, min_refetch_interval=min_refetch_interval)

    @property
    def issuer(self) -> str:
        return self._settings.issuer

    async def verify(self, token: str) -> Principal:
        """The Principal a valid provider token stands for; AuthenticationError says what is wrong."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise refusal(exc, what=_WHAT) from None
        kid = header.get("kid")
        key = await self._jwks.key(kid if isinstance(kid, str) else None)
        if key is None:
            raise AuthenticationError(
                f"The {_WHAT} was refused: it is signed by a key the provider does not publish."
            )
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[key.algorithm_name],
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                leeway=self._leeway,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            raise refusal(exc, what=_WHAT) from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise AuthenticationError(f"The {_WHAT} was refused: its `sub` claim is not a string.")
        role = self._settings.role
        return Principal(
            id="ext:" + subject,
            kind="external",
            name=subject,
            role=role,
            scopes=granted_scopes(role, self._mapped(_claim_names(claims, self._settings.scope_claim))),
        )

    async def close(self) -> None:
        await self._jwks.close()

    def _mapped(self, provider_names: Iterable[str]) -> set[str]:
        return {ours for name in provider_names for ours in self._settings.scope_map.get(name, ())}


def _claim_names(claims: dict[str, Any], claim: str) -> list[str]:
    """A scope-like claim as a list of names: a space-separated string or a list of strings.

    A dotted name that is not a top-level claim walks nested objects ("realm_access.roles").
    """
    value: Any = claims.get(claim)
    if value is None and "." in claim:
        value = claims
        for part in claim.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []
