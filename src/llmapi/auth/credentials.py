"""Where a request carries its credential: `Authorization: Bearer <credential>` or `x-api-key`."""

from __future__ import annotations

from llmapi.errors import AuthenticationError


def credential_from_headers(authorization: str | None, x_api_key: str | None) -> str | None:
    """The credential sent, or None when there is none. A Bearer credential wins over x-api-key.

    Raises AuthenticationError when Authorization uses another scheme and no x-api-key is sent.
    """
    if authorization and authorization.strip():
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        if not (x_api_key and x_api_key.strip()):
            raise AuthenticationError(
                "The Authorization header must read `Bearer <key>`; send the key that way or as `x-api-key`.",
                code="invalid_authorization_header",
            )
    if x_api_key and x_api_key.strip():
        return x_api_key.strip()
    return None
