"""Who is calling (authentication) and whether they may (the route's scope).

`authenticate` reads the credential from the headers alone and remembers the principal in the request's
context; `AuthenticatedRoute` calls it before the body is read, and the dependencies below find it there.
The security schemes are declared here so that OpenAPI shows them: a Bearer API key or access token,
the `x-api-key` header, and the OAuth2 client-credentials flow.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import APIKeyHeader, HTTPBearer, OAuth2, SecurityScopes

from llmapi.auth.credentials import credential_from_headers
from llmapi.auth.principal import Principal
from llmapi.auth.scopes import ROLE_SCOPES, Scope
from llmapi.errors import PermissionDeniedError
from llmapi.services.request_context import RequestContext

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

AUTH_OFF_ADMIN = Principal(
    id="anonymous", kind="anonymous", name="auth off", role="admin", scopes=ROLE_SCOPES["admin"]
)
"""Everyone, when authentication is off (LLMAPI_AUTH=off, local development only)."""


class Authenticates(Protocol):
    async def authenticate(self, credential: str | None) -> Principal: ...


async def authenticate(request: Request) -> Principal:
    """The caller, from `Authorization: Bearer` or `x-api-key`; once per request."""
    context = RequestContext.of(request.scope)
    if context.principal is None:
        authenticator: Authenticates | None = request.app.state.authenticator
        if authenticator is None:
            context.principal = AUTH_OFF_ADMIN
        else:
            headers = request.headers
            credential = credential_from_headers(headers.get("authorization"), headers.get("x-api-key"))
            context.principal = await authenticator.authenticate(credential)
    return context.principal


async def current_principal(
    request: Request,
    bearer: Annotated[Any, Depends(_bearer)],
    api_key: Annotated[Any, Depends(_api_key)],
    oauth2: Annotated[Any, Depends(_oauth2)],
) -> Principal:
    """The schemes are parameters for the OpenAPI document only; `authenticate` reads the headers."""
    return await authenticate(request)


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require(scope: Scope) -> Any:
    """A dependency that lets the request through only with `scope`; routes declare it once."""
    return Security(check_scopes, scopes=[scope.value])


async def check_scopes(security_scopes: SecurityScopes, principal: PrincipalDep) -> Principal:
    """The dependency `require` declares (FastAPI passes it the scopes declared with it)."""
    ensure_scopes(principal, [Scope(name) for name in security_scopes.scopes])
    return principal


def ensure_scopes(principal: Principal, scopes: Iterable[Scope]) -> None:
    for scope in scopes:
        if not principal.allows(scope):
            raise PermissionDeniedError(
                f"This credential lacks the '{scope.value}' scope this endpoint needs; "
                "ask an admin for a key or client with it."
            )


def scope_check(scopes: Iterable[Scope]) -> Callable[[Request], Awaitable[Principal]]:
    """What `check_scopes` does for `scopes`, with the caller authenticated from the request alone."""
    required = tuple(scopes)

    async def check(request: Request) -> Principal:
        principal = await authenticate(request)
        ensure_scopes(principal, required)
        return principal

    return check
