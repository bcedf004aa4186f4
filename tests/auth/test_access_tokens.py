from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from tests.auth.conftest import AUDIENCE, ISSUER
from tests.auth.doubles import ENCRYPTION, MemorySigningKeyStore

from llmapi.auth.access_tokens import AccessTokens
from llmapi.auth.key_ring import KeyRing
from llmapi.auth.scopes import Scope, ScopeError
from llmapi.errors import AuthenticationError


def tampered(token: str, **changes: Any) -> str:
    """The same header and signature around a payload with `changes` applied."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    encoded = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{encoded}.{signature}"


async def refused(tokens: AccessTokens, token: str) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as caught:
        await tokens.verify(token)
    assert token not in caught.value.message
    assert caught.value.status_code == 401
    return caught.value


async def test_issue_and_verify(tokens: AccessTokens, key_ring: KeyRing) -> None:
    issued = tokens.issue(subject="client-1", scopes=["chat", "models:read"], role="service", ttl_seconds=600)
    assert issued.scope == "chat models:read"
    assert issued.expires_in == 600
    assert issued.token not in repr(issued)
    header = jwt.get_unverified_header(issued.token)
    assert header["kid"] == key_ring.current().kid
    assert header["typ"] == "at+jwt"
    claims = jwt.decode(issued.token, options={"verify_signature": False})
    assert {"iss", "aud", "sub", "scope", "role", "exp", "iat", "nbf", "jti"} <= set(claims)
    principal = await tokens.verify(issued.token)
    assert principal.kind == "oauth_client"
    assert principal.id == "client-1"
    assert principal.role == "service"
    assert principal.scopes == {Scope.CHAT, Scope.MODELS_READ}


def test_issue_refuses_scopes_beyond_the_role(tokens: AccessTokens) -> None:
    with pytest.raises(ScopeError):
        tokens.issue(subject="c", scopes=["admin"], role="service", ttl_seconds=60)
    with pytest.raises(ValueError, match="ttl_seconds"):
        tokens.issue(subject="c", scopes=[], role="service", ttl_seconds=0)


async def test_an_altered_claim_is_refused(tokens: AccessTokens) -> None:
    issued = tokens.issue(subject="client-1", scopes=["chat"], role="service", ttl_seconds=600)
    error = await refused(tokens, tampered(issued.token, role="admin", scope="admin"))
    assert "signature" in error.message


async def test_an_expired_token_is_refused(key_ring: KeyRing) -> None:
    past = AccessTokens(key_ring, issuer=ISSUER, audience=AUDIENCE, clock=lambda: time.time() - 3600)
    issued = past.issue(subject="c", scopes=["chat"], role="service", ttl_seconds=60)
    error = await refused(AccessTokens(key_ring, issuer=ISSUER, audience=AUDIENCE), issued.token)
    assert "expired" in error.message
    assert error.code == "token_expired"


async def test_wrong_audience_and_issuer_are_refused(key_ring: KeyRing, tokens: AccessTokens) -> None:
    other_audience = AccessTokens(key_ring, issuer=ISSUER, audience="someone-else")
    token = other_audience.issue(subject="c", scopes=["chat"], role="service", ttl_seconds=60).token
    assert "audience" in (await refused(tokens, token)).message
    other_issuer = AccessTokens(key_ring, issuer="https://elsewhere", audience=AUDIENCE)
    token = other_issuer.issue(subject="c", scopes=["chat"], role="service", ttl_seconds=60).token
    assert "issuer" in (await refused(tokens, token)).message


async def test_scopes_are_narrowed_to_the_role(key_ring: KeyRing, tokens: AccessTokens) -> None:
    key = key_ring.current()
    now = int(time.time())
    claims = {
        "iss": ISSUER, "aud": AUDIENCE, "sub": "c", "role": "service", "scope": "admin chat no-such-scope",
        "iat": now, "exp": now + 60, "jti": "j",
    }  # fmt: skip
    token = jwt.encode(claims, key.private_key, algorithm="ES256", headers={"kid": key.kid, "typ": "at+jwt"})
    assert (await tokens.verify(token)).scopes == {Scope.CHAT}


async def test_unsigned_and_foreign_tokens_are_refused(tokens: AccessTokens, key_ring: KeyRing) -> None:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "c",
        "role": "admin",
        "scope": "admin",
    }
    claims |= {"iat": now, "exp": now + 60, "jti": "j"}
    kid = key_ring.current().kid
    unsigned = jwt.encode(claims, "", algorithm="none", headers={"kid": kid, "typ": "at+jwt"})
    await refused(tokens, unsigned)
    stranger = KeyRing(MemorySigningKeyStore(), encryption=ENCRYPTION)
    await stranger.load()
    foreign = AccessTokens(stranger, issuer=ISSUER, audience=AUDIENCE)
    token = foreign.issue(subject="c", scopes=["admin"], role="admin", ttl_seconds=60).token
    assert "does not know" in (await refused(tokens, token)).message
    await refused(tokens, "not.a.jwt")


async def test_a_rotation_on_another_instance_is_picked_up_on_an_unknown_kid(
    signing_store: MemorySigningKeyStore, tokens: AccessTokens, key_ring: KeyRing
) -> None:
    before = tokens.issue(subject="c", scopes=["chat"], role="service", ttl_seconds=60).token
    other_ring = KeyRing(signing_store, encryption=ENCRYPTION)
    await other_ring.load()
    await other_ring.rotate()
    other = AccessTokens(other_ring, issuer=ISSUER, audience=AUDIENCE)
    after = other.issue(subject="c", scopes=["chat"], role="service", ttl_seconds=60).token
    assert (await tokens.verify(after)).id == "c"  # unknown kid -> refresh here
    assert (await other.verify(before)).id == "c"  # the retired key still verifies


async def test_a_token_living_longer_than_this_server_issues_is_refused(key_ring: KeyRing) -> None:
    tokens = AccessTokens(key_ring, issuer=ISSUER, audience=AUDIENCE, max_lifetime_seconds=3600)
    year = tokens.issue(subject="c", scopes=["chat"], role="service", ttl_seconds=365 * 86_400).token
    error = await refused(tokens, year)
    assert ("lifetime" in error.message, error.code) == (True, "invalid_token")
    hour = tokens.issue(subject="c", scopes=["chat"], role="service", ttl_seconds=3600).token
    assert (await tokens.verify(hour)).id == "c"


async def test_a_token_signed_by_a_withdrawn_key_is_refused_without_waiting(
    key_ring: KeyRing, tokens: AccessTokens
) -> None:
    old = tokens.issue(subject="c", scopes=["chat"], role="service", ttl_seconds=60).token
    await key_ring.rotate(retire_previous=True)
    started = time.monotonic()
    error = await refused(tokens, old)
    assert "retired" in error.message
    assert time.monotonic() - started < 0.5  # no reload of the key ring is waited for
    new = tokens.issue(subject="c", scopes=["chat"], role="service", ttl_seconds=60).token
    assert (await tokens.verify(new)).id == "c"
