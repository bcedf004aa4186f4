"""Look at a JWT before verifying it, only to choose who verifies it. Nothing read here is trusted."""

from __future__ import annotations

import re

import jwt

_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


def looks_like_jwt(credential: str) -> bool:
    """Three base64url segments separated by dots (a JWS in compact serialization)."""
    return _JWT_SHAPE.match(credential) is not None


def unverified_issuer(token: str) -> str | None:
    """The `iss` claim as written in the token, unverified; None when unreadable or absent."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    issuer = claims.get("iss")
    return issuer if isinstance(issuer, str) else None
