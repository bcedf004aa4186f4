"""The private halves of the signing keys, encrypted at rest with a secret that is not in the database.

Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`) under a key derived from the secret by
HKDF-SHA256. Several secrets can decrypt (MultiFernet), the first one encrypts: that is how the secret is
rotated. A stored value reads `fernet:<token>`; a plain PEM (written before encryption existed) still
reads, and `resealed` turns it, or a value encrypted under an older secret, into one under the current.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEALED_PREFIX = "fernet:"
_PLAIN_PEM_PREFIX = "-----BEGIN "
_HKDF_INFO = b"llmapi: signing keys at rest, v1"


class KeyEncryptionError(Exception):
    """A stored private key cannot be decrypted; the message says what to do."""


class KeyEncryption:
    def __init__(self, secret: str, *previous: str) -> None:
        if not secret:
            raise ValueError("the secret key is empty")
        self._current = Fernet(_fernet_key(secret))
        self._any = MultiFernet([self._current, *(Fernet(_fernet_key(old)) for old in previous if old)])

    def seal(self, private_key_pem: str) -> str:
        """The value to store for a private key in PEM."""
        return SEALED_PREFIX + self._current.encrypt(private_key_pem.encode("ascii")).decode("ascii")

    def unseal(self, stored: str) -> str:
        """The PEM of a stored private key, sealed under any secret known here, or plain (from before)."""
        if stored.startswith(_PLAIN_PEM_PREFIX):
            return stored
        if not stored.startswith(SEALED_PREFIX):
            raise KeyEncryptionError("a stored signing key is in no format this server knows")
        try:
            return self._any.decrypt(stored.removeprefix(SEALED_PREFIX).encode("ascii")).decode("ascii")
        except InvalidToken:
            raise KeyEncryptionError(
                "a stored signing key cannot be decrypted with LLMAPI_SECRET_KEY (nor "
                "LLMAPI_SECRET_KEY_PREVIOUS): give this instance the secret key the others use; after "
                "changing it, set the old one as LLMAPI_SECRET_KEY_PREVIOUS"
            ) from None

    def resealed(self, stored: str) -> str | None:
        """The value to store instead, when `stored` is plain or sealed under a previous secret; else None."""
        if stored.startswith(SEALED_PREFIX):
            try:
                self._current.decrypt(stored.removeprefix(SEALED_PREFIX).encode("ascii"))
            except InvalidToken:
                pass
            else:
                return None
        return self.seal(self.unseal(stored))


def _fernet_key(secret: str) -> bytes:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret.encode())
    return base64.urlsafe_b64encode(derived)
