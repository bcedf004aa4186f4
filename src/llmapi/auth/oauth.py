"""The OAuth2 client-credentials grant (RFC 6749 §4.4), without HTTP: a client id and secret become a token.

The token endpoint speaks OAuth2, so its errors have the RFC 6749 §5.2 shape, not the OpenAI one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

from llmapi.auth.access_tokens import AccessTokens, IssuedToken
from llmapi.auth.grants import granted_scopes, role_named
from llmapi.auth.scopes import Scope
from llmapi.auth.secrets import hash_secret, matches
from llmapi.errors import APIError

OAuthErrorCode = Literal["invalid_client", "invalid_scope", "invalid_request", "unsupported_grant_type"]
CLIENT_CREDENTIALS = "client_credentials"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# Compared against when the client does not exist, so an unknown id costs what a wrong secret costs.
_ABSENT_CLIENT_HASH = hash_secret("no client has this secret")


class OAuthError(APIError):
    """An RFC 6749 §5.2 error: body {"error", "error_description"}; invalid_client is a 401."""

    def __init__(self, error: OAuthErrorCode, description: str, *, status: int | None = None) -> None:
        headers = dict(_NO_STORE)
        if error == "invalid_client":
            headers["WWW-Authenticate"] = 'Basic realm="llmapi"'
        super().__init__(description, code=error, headers=headers)
        self.error: OAuthErrorCode = error
        self.description = description
        self.status_code = status if status is not None else (401 if error == "invalid_client" else 400)

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.description}


class OAuthClientRecord(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def secret_hash(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def scopes(self) -> Sequence[str] | None: ...


class OAuthClientLookup(Protocol):
    async def by_id_active(self, client_id: str) -> OAuthClientRecord | None: ...


def require_client_credentials_grant(grant_type: str | None) -> None:
    """Refuse any grant but client_credentials, the one this server implements."""
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type is required; send grant_type=client_credentials.")
    if grant_type != CLIENT_CREDENTIALS:
        raise OAuthError(
            "unsupported_grant_type", "Only grant_type=client_credentials is supported by this server."
        )


class ClientCredentialsGrant:
    def __init__(self, *, clients: OAuthClientLookup, tokens: AccessTokens, ttl_seconds: int) -> None:
        self._clients = clients
        self._tokens = tokens
        self._ttl_seconds = ttl_seconds

    async def token_for_client(self, *, client_id: str, client_secret: str, scope: str | None) -> IssuedToken:
        """A token for an active client whose secret matches, with the scopes asked (or all of its own)."""
        if not client_id or not client_secret:
            raise OAuthError(
                "invalid_client",
                "Client authentication is required: send client_id and client_secret "
                "(HTTP Basic or form fields).",
            )
        client = await self._clients.by_id_active(client_id)
        secret_matches = matches(client_secret, client.secret_hash if client else _ABSENT_CLIENT_HASH)
        role = role_named(client.role) if client else None
        if client is None or not secret_matches or role is None:
            raise OAuthError(
                "invalid_client", "Client authentication failed: unknown client or wrong secret."
            )
        allowed = granted_scopes(role, client.scopes)
        granted = allowed if not scope or not scope.split() else _narrowed(scope, allowed)
        if not granted:
            raise OAuthError("invalid_scope", "The client holds no scope, so no token can be issued for it.")
        await self._tokens.settled()  # never sign with a key that a rotation being loaded retires
        return self._tokens.issue(subject=client.id, scopes=granted, role=role, ttl_seconds=self._ttl_seconds)


def _narrowed(scope: str, allowed: frozenset[Scope]) -> frozenset[Scope]:
    asked = set(scope.split())
    beyond = sorted(asked - {s.value for s in allowed})
    if beyond:
        raise OAuthError(
            "invalid_scope",
            f"The client may not request {beyond}; it may request any of {sorted(s.value for s in allowed)}.",
        )
    return frozenset(Scope(name) for name in asked)
