"""OAuth2: the client-credentials token endpoint (RFC 6749 §4.4) and the public keys that verify tokens."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Form, Header
from starlette.responses import JSONResponse, Response

from llmapi.api.deps import IdentityDep
from llmapi.api.responses import json_response
from llmapi.api.route_classes import ApiRoute
from llmapi.api.routing import Router
from llmapi.auth.oauth import OAuthError, require_client_credentials_grant
from llmapi.protocol.admin import TokenResponse
from llmapi.protocol.errors import ErrorResponse, OAuthErrorResponse

router = Router(tags=["oauth"], route_class=ApiRoute)


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """client_id and client_secret from `Authorization: Basic` (RFC 6749 §2.3.1), if sent that way."""
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise OAuthError("invalid_client", "The Basic credentials are not valid base64.") from exc
    client_id, sep, client_secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "Basic credentials must be client_id:client_secret.")
    return client_id, client_secret


@router.post(
    "/v1/oauth/token",
    response_model=TokenResponse,
    summary="Exchange client credentials for a JWT",
    responses={
        400: {
            "model": OAuthErrorResponse | ErrorResponse,
            "description": "A refused grant (RFC 6749 §5.2: invalid_request, unsupported_grant_type, "
            "invalid_scope), or a body that cannot be read (OpenAI's shape).",
        },
        401: {
            "model": OAuthErrorResponse,
            "description": "invalid_client: no such client, or a wrong secret.",
        },
    },
)
async def token(
    identity: IdentityDep,
    grant_type: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    require_client_credentials_grant(grant_type)
    credentials = _basic_credentials(authorization) or (client_id, client_secret)
    if not credentials[0] or not credentials[1]:
        raise OAuthError("invalid_client", "Send client_id and client_secret (form fields or HTTP Basic).")
    issued = await identity.grant.token_for_client(
        client_id=credentials[0], client_secret=credentials[1], scope=scope
    )
    response = json_response(
        TokenResponse(access_token=issued.token, expires_in=issued.expires_in, scope=issued.scope)
    )
    response.headers["cache-control"] = "no-store"
    return response


@router.get("/.well-known/jwks.json", summary="Public keys that verify this server's access tokens")
async def jwks(identity: IdentityDep) -> JSONResponse:
    return JSONResponse(identity.key_ring.jwks(), headers={"cache-control": "public, max-age=60"})
