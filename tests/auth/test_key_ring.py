from __future__ import annotations

import asyncio
import secrets
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from tests.auth.doubles import ENCRYPTION, MemorySigningKeyStore

from llmapi.auth.key_encryption import KeyEncryption, KeyEncryptionError
from llmapi.auth.key_ring import KeyRing, KeyRingError
from llmapi.auth.signing_keys import generate_signing_key


async def test_load_creates_the_first_key_once(signing_store: MemorySigningKeyStore) -> None:
    ring = KeyRing(signing_store, encryption=ENCRYPTION)
    await ring.load()
    await ring.load()
    assert len(signing_store.keys) == 1
    assert ring.current().kid in signing_store.keys
    assert ring.current().algorithm == "ES256"


def test_current_before_load_says_what_to_do(signing_store: MemorySigningKeyStore) -> None:
    with pytest.raises(KeyRingError, match="load"):
        KeyRing(signing_store, encryption=ENCRYPTION).current()


def test_unsupported_algorithm_is_refused(signing_store: MemorySigningKeyStore) -> None:
    with pytest.raises(ValueError, match="HS256"):
        KeyRing(signing_store, algorithm="HS256", encryption=ENCRYPTION)


async def test_jwks_publishes_public_members_only(
    key_ring: KeyRing, signing_store: MemorySigningKeyStore
) -> None:
    (jwk,) = key_ring.jwks()["keys"]
    assert jwk["kid"] == key_ring.current().kid
    assert (jwk["alg"], jwk["use"], jwk["kty"], jwk["crv"]) == ("ES256", "sig", "EC", "P-256")
    assert "d" not in jwk
    stored = signing_store.keys[jwk["kid"]].private_key_pem
    assert stored.startswith("fernet:") and "PRIVATE KEY" not in stored
    assert isinstance(key_ring.public_key(jwk["kid"]), jwt.PyJWK)
    assert key_ring.public_key("nope") is None


async def test_rotate_signs_with_the_new_key_and_keeps_the_old_published(key_ring: KeyRing) -> None:
    old = key_ring.current()
    new = await key_ring.rotate()
    assert new.kid != old.kid
    assert key_ring.current().kid == new.kid
    assert {jwk["kid"] for jwk in key_ring.jwks()["keys"]} == {old.kid, new.kid}
    assert key_ring.public_key(old.kid) is not None


async def test_refresh_picks_up_a_rotation_elsewhere(signing_store: MemorySigningKeyStore) -> None:
    here = KeyRing(signing_store, min_refresh_interval=0.2, encryption=ENCRYPTION)
    elsewhere = KeyRing(signing_store, encryption=ENCRYPTION)
    await here.load()
    await elsewhere.load()
    rotated = await elsewhere.rotate()
    await here.refresh()
    assert here.current().kid == rotated.kid


async def test_early_refreshes_wait_and_share_one_reload(signing_store: MemorySigningKeyStore) -> None:
    ring = KeyRing(signing_store, min_refresh_interval=0.2, encryption=ENCRYPTION)
    await ring.load()
    reads, started = signing_store.reads, time.monotonic()
    await asyncio.gather(*(ring.refresh() for _ in range(20)))
    assert signing_store.reads - reads == 1
    assert time.monotonic() - started >= 0.15
    await ring.refresh(force=True)
    assert signing_store.reads - reads == 2


async def test_a_retired_key_leaves_the_set_when_its_retention_ends(
    signing_store: MemorySigningKeyStore,
) -> None:
    ring = KeyRing(signing_store, encryption=ENCRYPTION)
    await ring.load()
    old = ring.current()
    await ring.rotate()
    signing_store.keys[old.kid].retired_at = datetime.now(UTC) - timedelta(days=1)
    await ring.refresh(force=True)
    assert ring.public_key(old.kid) is None
    assert [jwk["kid"] for jwk in ring.jwks()["keys"]] == [ring.current().kid]


@pytest.mark.parametrize("algorithm", ["RS256", "EdDSA"])
async def test_other_algorithms(algorithm: str) -> None:
    ring = KeyRing(MemorySigningKeyStore(), algorithm=algorithm, encryption=ENCRYPTION)
    await ring.load()
    key = ring.current()
    token = jwt.encode({"sub": "x"}, key.private_key, algorithm=algorithm, headers={"kid": key.kid})
    public = ring.public_key(key.kid)
    assert public is not None
    assert jwt.decode(token, public, algorithms=[algorithm])["sub"] == "x"


async def test_rotate_retiring_the_previous_key_withdraws_it_at_once(
    signing_store: MemorySigningKeyStore,
) -> None:
    ring, elsewhere = (
        KeyRing(signing_store, encryption=ENCRYPTION),
        KeyRing(signing_store, encryption=ENCRYPTION),
    )
    await ring.load()
    await elsewhere.load()
    old = ring.current()
    new = await ring.rotate(retire_previous=True)
    assert set(signing_store.keys) == {new.kid}  # the private key is gone with it
    assert ring.public_key(old.kid) is None
    assert ring.was_withdrawn(old.kid)
    assert [jwk["kid"] for jwk in ring.jwks()["keys"]] == [new.kid]
    assert elsewhere.public_key(old.kid) is not None  # until it hears of the rotation
    elsewhere.reload_soon()
    await elsewhere.settled()
    assert (elsewhere.current().kid, elsewhere.public_key(old.kid)) == (new.kid, None)
    assert elsewhere.was_withdrawn(old.kid)
    assert not elsewhere.was_withdrawn(new.kid)


async def test_a_plain_private_key_from_before_is_reencrypted_at_load() -> None:
    store = MemorySigningKeyStore()
    new = generate_signing_key("ES256")
    await store.add(new.kid, new.algorithm, new.private_key_pem, new.public_jwk)  # as stored before
    ring = KeyRing(store, encryption=ENCRYPTION)
    await ring.load()
    assert ring.current().kid == new.kid
    stored = store.keys[new.kid].private_key_pem
    assert stored.startswith("fernet:") and "PRIVATE KEY" not in stored
    assert ENCRYPTION.unseal(stored) == new.private_key_pem


async def test_the_secret_key_rotates_through_previous(signing_store: MemorySigningKeyStore) -> None:
    old, new = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    first = KeyRing(signing_store, encryption=KeyEncryption(old))
    await first.load()
    kid = first.current().kid
    with pytest.raises(KeyEncryptionError, match="LLMAPI_SECRET_KEY_PREVIOUS"):
        await KeyRing(signing_store, encryption=KeyEncryption(new)).load()
    await KeyRing(signing_store, encryption=KeyEncryption(new, old)).load()  # re-encrypts under `new`
    after = KeyRing(signing_store, encryption=KeyEncryption(new))
    await after.load()
    assert after.current().kid == kid
    with pytest.raises(KeyEncryptionError):
        await KeyRing(signing_store, encryption=KeyEncryption(old)).load()
