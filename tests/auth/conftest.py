from __future__ import annotations

import os
import uuid

import pytest
import redis.asyncio as aioredis
from tests.auth.doubles import ENCRYPTION, MemorySigningKeyStore

from llmapi.auth.access_tokens import AccessTokens
from llmapi.auth.key_ring import KeyRing

ISSUER = "https://llmapi.test"
AUDIENCE = "llmapi-test"
REDIS_URL = os.environ.get("LLMAPI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def redis_url() -> str:
    """The Redis these tests use for real; skipped when unreachable unless LLMAPI_REQUIRE_SERVICES=1."""
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=1.0, socket_timeout=1.0)
    try:
        await client.ping()
    except (aioredis.RedisError, OSError) as exc:
        reason = f"Redis at {REDIS_URL} is unreachable ({exc}); start one or set LLMAPI_TEST_REDIS_URL"
        if os.environ.get("LLMAPI_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    finally:
        await client.aclose()
    return REDIS_URL


@pytest.fixture
def channel() -> str:
    """A channel of this test alone, so parallel runs do not hear each other."""
    return f"llmapi-test:{uuid.uuid4().hex}:auth-invalidate"


@pytest.fixture
def signing_store() -> MemorySigningKeyStore:
    return MemorySigningKeyStore()


@pytest.fixture
async def key_ring(signing_store: MemorySigningKeyStore) -> KeyRing:
    ring = KeyRing(signing_store, encryption=ENCRYPTION)
    await ring.load()
    return ring


@pytest.fixture
def tokens(key_ring: KeyRing) -> AccessTokens:
    return AccessTokens(key_ring, issuer=ISSUER, audience=AUDIENCE)
