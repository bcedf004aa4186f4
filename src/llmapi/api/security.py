"""Who is calling (authentication) and whether they may (the route's scope), as FastAPI dependencies.

The security schemes are declared here so that OpenAPI shows them: a Bearer API key or access token,
the `x-api-key` header, and the OAuth2 client-credentials flow.
"""

from __future__ import annotations

from typing import Annotated, Any, Protocol

from fastapi import Depends, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer, OAuth2

from llmapi.auth.principal import Principal
from llmapi.auth.scopes import ROLE_SCOPES, Scope
from llmapi.errors import PermissionDeniedError

_bearer = HTTPBearer(auto_error=False, description="An API key (`llmapi-...`) or an OAuth2 access token.")
_api_key = APIKeyHeader(name="x-api-key", auto_error=False, description="An API key.")
_oauth2 = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(
            tokenUrl="/v1/oauth/token", scopes={scope.value: scope.name.lower() for scope in Scope}
        )
    ),
    auto_error=False,
    description="Client credentials: POST /v1/oauth/token gives a JWT to send as a Bearer token.",
)

ANONYMOUS_DEVELOPER = Principal(
    id="anonymous", kind="anonymous", name="auth off", role="admin", scopes=ROLE_SCOPES["admin"]
)


class Authenticates(Protocol):
    async def authenticate(self, credential: str | None) -> Principal: ...


async def current_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
    _: Annotated[str | None, Depends(_oauth2)],
) -> Principal:
    # FastAPI solves this once per distinct set of security scopes above it (a route's `require` and a plain
    # PrincipalDep are two); authenticate once per request all the same.
    known = request.scope.get("state", {}).get("principal")
    if isinstance(known, Principal):
        return known
    authenticator: Authenticates | None = request.app.state.authenticator
    if authenticator is None:
        principal = ANONYMOUS_DEVELOPER
    else:
        principal = await authenticator.authenticate(bearer.credentials if bearer else api_key)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require(scope: Scope) -> Any:
    """A dependency that lets the request through only with `scope`; routes declare it once."""

    async def check(principal: PrincipalDep) -> Principal:
        if not principal.allows(scope):
            raise PermissionDeniedError(
                f"This credential lacks the '{scope.value}' scope this endpoint needs; "
                "ask an admin for a key or client with it."
            )
        return principal

    return Security(check, scopes=[scope.value])
