"""Why a JWT was refused, in words the caller can act on. The token itself is never part of the message."""

from __future__ import annotations

import jwt

from llmapi.errors import AuthenticationError


def refusal(exc: jwt.PyJWTError, *, what: str) -> AuthenticationError:
    """The AuthenticationError for a PyJWT failure; `what` names the token ("access token", ...)."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return AuthenticationError(f"The {what} has expired; request a new one.", code="token_expired")
    if isinstance(exc, jwt.InvalidSignatureError):
        reason = "its signature is invalid: it was altered or not signed by a key this server trusts"
    elif isinstance(exc, jwt.InvalidAudienceError):
        reason = "it is meant for another audience (wrong `aud`); request a token for this API"
    elif isinstance(exc, jwt.InvalidIssuerError):
        reason = "it comes from an issuer this server does not trust (wrong `iss`)"
    elif isinstance(exc, jwt.ImmatureSignatureError):
        reason = "it is not valid yet (`nbf` or `iat` is in the future); check the issuer's clock"
    elif isinstance(exc, jwt.MissingRequiredClaimError):
        reason = f"it lacks the required claim `{exc.claim}`"
    elif isinstance(exc, jwt.InvalidAlgorithmError):
        reason = "it is signed with an algorithm its key does not allow"
    else:
        reason = "it is malformed"
    return AuthenticationError(f"The {what} was refused: {reason}.", code="invalid_token")
