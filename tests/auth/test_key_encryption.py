from __future__ import annotations

import secrets

import pytest

from llmapi.auth.key_encryption import KeyEncryption, KeyEncryptionError
from llmapi.auth.signing_keys import generate_signing_key

PEM = generate_signing_key("ES256").private_key_pem


def test_a_sealed_key_reads_back_and_shows_nothing_of_itself() -> None:
    encryption = KeyEncryption(secrets.token_urlsafe(32))
    sealed = encryption.seal(PEM)
    assert sealed.startswith("fernet:")
    assert "PRIVATE KEY" not in sealed
    assert PEM.split("\n")[1][:16] not in sealed
    assert sealed != encryption.seal(PEM)  # a fresh IV every time
    assert encryption.unseal(sealed) == PEM
    assert encryption.resealed(sealed) is None


def test_another_secret_cannot_read_it_and_says_what_to_do() -> None:
    sealed = KeyEncryption(secrets.token_urlsafe(32)).seal(PEM)
    with pytest.raises(KeyEncryptionError, match="LLMAPI_SECRET_KEY_PREVIOUS"):
        KeyEncryption(secrets.token_urlsafe(32)).unseal(sealed)
    with pytest.raises(KeyEncryptionError, match="format"):
        KeyEncryption(secrets.token_urlsafe(32)).unseal("rot13:" + sealed)


def test_plain_and_previously_sealed_keys_are_resealed_under_the_current_secret() -> None:
    old, new = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    rotating = KeyEncryption(new, old)
    assert rotating.unseal(PEM) == PEM  # stored before encryption existed
    from_plain = rotating.resealed(PEM)
    from_old = rotating.resealed(KeyEncryption(old).seal(PEM))
    assert from_plain is not None and from_old is not None
    for resealed in (from_plain, from_old):
        assert KeyEncryption(new).unseal(resealed) == PEM
