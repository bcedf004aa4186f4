from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from tests.auth.doubles import MemoryApiKeys, MemoryClients, StoredApiKey
from tests.auth.idp_server import IDP_AUDIENCE, IDP_ISSUER, FakeIdP, running_idp
from tests.auth.test_access_tokens import tampered

from llmapi.auth.access_tokens import AccessTokens
from llmapi.auth.authenticator import Authenticator
from llmapi.auth.external_idp import ExternalIdP
from llmapi.auth.invalidation import RedisInvalidation
from llmapi.auth.principal import Principal
from llmapi.auth.scopes import Scope
from llmapi.config import OIDCSettings
from llmapi.errors import AuthenticationError
from llmapi.types import RateLimits

ADMIN_KEY = secrets.token_hex(32)


@pytest.fixture
def api_keys() -> MemoryApiKeys:
    return MemoryApiKeys()


@pytest.fixture
def clients() -> MemoryClients:
    return MemoryClients()


@pytest.fixture
def make_authenticator(
    api_keys: MemoryApiKeys, clients: MemoryClients, tokens: AccessTokens
) -> Callable[..., Authenticator]:
    def make(**options: object) -> Authenticator:
        defaults: dict[str, object] = {
            "api_keys": api_keys, "clients": clients, "tokens": tokens, "external": None,
            "admin_key": ADMIN_KEY, "cache_ttl": 30.0, "invalidation": None,
        }  # fmt: skip
        return Authenticator(**(defaults | options))  # type: ignore[arg-type]

    return make


async def refused(authenticator: Authenticator, credential: str | None) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as caught:
        await authenticator.authenticate(credential)
    assert not credential or credential not in caught.value.message
    assert caught.value.headers["WWW-Authenticate"].startswith("Bearer")
    return caught.value


async def test_missing_unknown_and_malformed_credentials(
    make_authenticator: Callable[..., Authenticator],
) -> None:
    authenticator = make_authenticator()
    missing = await refused(authenticator, None)
    assert missing.code == "missing_api_key"
    assert "Authorization: Bearer" in missing.message
    assert (await refused(authenticator, "llmapi-" + secrets.token_urlsafe(32))).code == "invalid_api_key"
    await refused(authenticator, "hello")
    assert "client secret" in (await refused(authenticator, "llmapi-cs-" + secrets.token_urlsafe(8))).message


async def test_the_bootstrap_admin_key(make_authenticator: Callable[..., Authenticator]) -> None:
    principal = await make_authenticator().authenticate(ADMIN_KEY)
    assert (principal.id, principal.role, Scope.ADMIN in principal.scopes) == (
        "admin:bootstrap",
        "admin",
        True,
    )
    await refused(make_authenticator(admin_key=None), ADMIN_KEY)


async def test_an_api_key_becomes_a_principal_and_is_cached(
    make_authenticator: Callable[..., Authenticator], api_keys: MemoryApiKeys
) -> None:
    authenticator = make_authenticator()
    limits = RateLimits(requests_per_minute=60, max_concurrent=2)
    plaintext, record = api_keys.create("service", scopes=["chat", "admin"], rate_limits=limits)
    first = await authenticator.authenticate(plaintext)
    second = await authenticator.authenticate(plaintext)
    assert first == second
    assert api_keys.lookups == 1
    assert (first.id, first.kind, first.role) == (record.id, "api_key", "service")
    assert first.scopes == {Scope.CHAT}  # narrowed to the role, never widened
    assert first.rate_limits == limits
    unknown = "llmapi-" + secrets.token_urlsafe(32)
    for _ in range(3):
        await refused(authenticator, unknown)
    assert api_keys.lookups == 2  # the refusal is cached too
    used = authenticator.drain_last_used()
    assert set(used) == {record.id}
    assert authenticator.drain_last_used() == {}


async def test_revoked_and_expired_keys_say_which(
    make_authenticator: Callable[..., Authenticator], api_keys: MemoryApiKeys
) -> None:
    authenticator = make_authenticator()
    revoked, _ = api_keys.create(revoked_at=datetime.now(UTC))
    expired, _ = api_keys.create(expires_at=datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=1))
    assert "revoked" in (await refused(authenticator, revoked)).message
    error = await refused(authenticator, expired)
    assert ("expired" in error.message, error.code) == (True, "api_key_expired")


async def test_a_cached_key_is_refused_once_it_expires(
    make_authenticator: Callable[..., Authenticator], api_keys: MemoryApiKeys
) -> None:
    authenticator = make_authenticator()
    plaintext, _ = api_keys.create(expires_at=datetime.now(UTC) + timedelta(seconds=0.3))
    await authenticator.authenticate(plaintext)
    await asyncio.sleep(0.35)
    assert (await refused(authenticator, plaintext)).code == "api_key_expired"


async def test_local_invalidation_without_redis(
    make_authenticator: Callable[..., Authenticator], api_keys: MemoryApiKeys
) -> None:
    authenticator = make_authenticator()
    plaintext, record = api_keys.create()
    await authenticator.authenticate(plaintext)
    api_keys.revoke(record.id)
    assert await authenticator.invalidate(record.id)
    assert "revoked" in (await refused(authenticator, plaintext)).message


class SlowLookup(MemoryApiKeys):
    """Answers only when told to, so an invalidation can land while a lookup is in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def by_hash(self, key_hash: str) -> StoredApiKey | None:
        found = await super().by_hash(key_hash)
        snapshot = dataclasses.replace(found) if found else None
        await self.release.wait()
        return snapshot


async def test_a_lookup_racing_an_invalidation_is_not_cached(
    make_authenticator: Callable[..., Authenticator],
) -> None:
    slow = SlowLookup()
    authenticator = make_authenticator(api_keys=slow)
    plaintext, record = slow.create()
    in_flight = asyncio.create_task(authenticator.authenticate(plaintext))
    await asyncio.sleep(0.01)
    slow.revoke(record.id)
    await authenticator.invalidate(record.id)
    slow.release.set()
    await in_flight  # it read the key before the revocation
    assert "revoked" in (await refused(authenticator, plaintext)).message


@pytest.fixture
async def two_instances(
    make_authenticator: Callable[..., Authenticator], redis_url: str, channel: str
) -> AsyncIterator[tuple[Authenticator, Authenticator]]:
    a = make_authenticator(invalidation=RedisInvalidation(redis_url, channel))
    b = make_authenticator(invalidation=RedisInvalidation(redis_url, channel))
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_a_revocation_on_one_instance_is_refused_by_another_within_a_second(
    two_instances: tuple[Authenticator, Authenticator], api_keys: MemoryApiKeys
) -> None:
    a, b = two_instances
    plaintext, record = api_keys.create()
    await a.authenticate(plaintext)
    await _until_cached(b, plaintext, api_keys)
    api_keys.revoke(record.id)
    revoked_at = asyncio.get_running_loop().time()
    assert await a.invalidate(record.id)
    while True:
        try:
            await b.authenticate(plaintext)
        except AuthenticationError as error:
            refusal = error
            break
        assert asyncio.get_running_loop().time() - revoked_at < 1.0, (
            "instance B still accepts the revoked key"
        )
        await asyncio.sleep(0.01)
    assert "revoked" in refusal.message


async def _until_cached(authenticator: Authenticator, plaintext: str, api_keys: MemoryApiKeys) -> Principal:
    """Authenticate until a second call is served from the cache (the channel is subscribed by then)."""
    for _ in range(200):
        await authenticator.authenticate(plaintext)
        lookups = api_keys.lookups
        principal = await authenticator.authenticate(plaintext)
        if api_keys.lookups == lookups:
            return principal
        await asyncio.sleep(0.01)
    pytest.fail("the authenticator never cached the key (is the invalidation channel subscribed?)")


async def test_a_token_of_a_revoked_client_is_refused_once_invalidated(
    make_authenticator: Callable[..., Authenticator], tokens: AccessTokens, clients: MemoryClients
) -> None:
    authenticator = make_authenticator()
    clients.create("worker")
    token = tokens.issue(subject="worker", scopes=["chat"], role="service", ttl_seconds=600).token
    for _ in range(3):
        assert (await authenticator.authenticate(token)).id == "worker"
    assert clients.lookups == 1  # the client's status is cached like an API key
    clients.revoke("worker")
    assert (await authenticator.authenticate(token)).id == "worker"  # cached until told
    assert await authenticator.invalidate("worker")
    error = await refused(authenticator, token)
    assert (error.code, "revoked" in error.message) == ("client_revoked", True)
    unknown = tokens.issue(subject="never-made", scopes=["chat"], role="service", ttl_seconds=600).token
    assert (await refused(authenticator, unknown)).code == "client_revoked"


async def test_a_client_revoked_on_one_instance_is_refused_by_another_within_a_second(
    two_instances: tuple[Authenticator, Authenticator], tokens: AccessTokens, clients: MemoryClients
) -> None:
    a, b = two_instances
    clients.create("worker")
    token = tokens.issue(subject="worker", scopes=["chat"], role="service", ttl_seconds=600).token
    for _ in range(200):  # until B serves the client's status from its cache (it is subscribed by then)
        await b.authenticate(token)
        lookups = clients.lookups
        await b.authenticate(token)
        if clients.lookups == lookups:
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail("instance B never cached the client's status")
    clients.revoke("worker")
    revoked_at = asyncio.get_running_loop().time()
    assert await a.invalidate("worker")
    while True:
        try:
            await b.authenticate(token)
        except AuthenticationError as error:
            refusal = error
            break
        assert asyncio.get_running_loop().time() - revoked_at < 1.0, "B still accepts the revoked client"
        await asyncio.sleep(0.01)
    assert refusal.code == "client_revoked"


async def test_without_the_invalidation_channel_nothing_is_cached(
    make_authenticator: Callable[..., Authenticator], api_keys: MemoryApiKeys, channel: str
) -> None:
    authenticator = make_authenticator(invalidation=RedisInvalidation("redis://127.0.0.1:9/0", channel))
    await authenticator.start()
    try:
        plaintext, record = api_keys.create()
        await authenticator.authenticate(plaintext)
        await authenticator.authenticate(plaintext)
        assert api_keys.lookups == 2
        assert not await authenticator.invalidate(record.id)
    finally:
        await authenticator.close()


async def test_jwts_go_to_their_issuer(
    make_authenticator: Callable[..., Authenticator], tokens: AccessTokens, clients: MemoryClients
) -> None:
    clients.create("client-1")
    async with running_idp() as idp:
        external = ExternalIdP(
            OIDCSettings(
                issuer=IDP_ISSUER,
                jwks_url=idp.jwks_url,
                audience=IDP_AUDIENCE,
                scope_map={"llm.chat": ["chat"]},
            )
        )
        authenticator = make_authenticator(external=external)
        try:
            ours = tokens.issue(subject="client-1", scopes=["chat"], role="service", ttl_seconds=60).token
            assert (await authenticator.authenticate(ours)).kind == "oauth_client"
            assert "signature" in (await refused(authenticator, tampered(ours, role="admin"))).message
            theirs = await authenticator.authenticate(idp.token(scope="llm.chat"))
            assert (theirs.id, theirs.scopes) == ("ext:alice", frozenset({Scope.CHAT}))
            stranger = idp.token(iss="https://elsewhere.test")
            assert "issuer" in (await refused(authenticator, stranger)).message
            await _refused_without_external(make_authenticator, idp)
        finally:
            await authenticator.close()


async def _refused_without_external(make_authenticator: Callable[..., Authenticator], idp: FakeIdP) -> None:
    assert "issuer" in (await refused(make_authenticator(), idp.token())).message
