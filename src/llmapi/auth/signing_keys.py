"""This server's JWT signing keys: how they are stored, generated and read back.

The private half is kept as PKCS8 PEM encrypted at rest (`key_encryption`), the public half as a JWK; the
store (a database repository) is described by the Protocols below, so this module needs no database code.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from llmapi.auth.key_encryption import KeyEncryption

SIGNING_ALGORITHMS = ("ES256", "RS256", "EdDSA")
SigningPrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class PublishedKeyRecord(Protocol):
    """A stored key whose public half verifies tokens (retired keys stay published for a while)."""

    @property
    def kid(self) -> str: ...
    @property
    def algorithm(self) -> str: ...
    @property
    def public_jwk(self) -> Mapping[str, Any]: ...


class SigningKeyRecord(PublishedKeyRecord, Protocol):
    """A stored key that may sign: the newest one (by `created_at`) does."""

    @property
    def private_key_pem(self) -> str: ...  # as stored: encrypted (or a plain PEM from before)
    @property
    def created_at(self) -> datetime: ...


class SigningKeyStore(Protocol):
    async def add(
        self, kid: str, algorithm: str, private_key_pem: str, public_jwk: dict[str, Any]
    ) -> SigningKeyRecord: ...
    async def active(self) -> Sequence[SigningKeyRecord]: ...
    async def published(self) -> Sequence[PublishedKeyRecord]: ...
    async def retire(self, kid: str) -> None: ...
    async def delete(self, kid: str) -> None: ...
    async def reencrypt(self, resealed: Callable[[str], str | None]) -> int: ...


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    algorithm: str
    private_key: SigningPrivateKey


@dataclass(frozen=True, slots=True)
class NewSigningKey:
    """A freshly generated key in the forms the store keeps."""

    kid: str
    algorithm: str
    private_key_pem: str
    public_jwk: dict[str, Any]


def generate_signing_key(algorithm: str) -> NewSigningKey:
    """A new key pair: EC P-256 for ES256, RSA 3072 for RS256, Ed25519 for EdDSA."""
    private_key = _new_private_key(algorithm)
    kid = secrets.token_urlsafe(16)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    public = jwt.get_algorithm_by_name(algorithm).to_jwk(private_key.public_key(), as_dict=True)
    return NewSigningKey(kid, algorithm, pem, {**public, "kid": kid, "alg": algorithm, "use": "sig"})


def load_signing_key(record: SigningKeyRecord, encryption: KeyEncryption) -> SigningKey:
    pem = encryption.unseal(record.private_key_pem)
    private_key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(
        private_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise ValueError(f"signing key {record.kid} is not an EC, RSA or Ed25519 private key")
    return SigningKey(record.kid, record.algorithm, private_key)


def public_jwk_of(record: PublishedKeyRecord) -> dict[str, Any]:
    """The JWK as published: the stored public members (never a private one) plus kid, alg and use."""
    public = {name: value for name, value in record.public_jwk.items() if name not in _PRIVATE_JWK_MEMBERS}
    return {**public, "kid": record.kid, "alg": record.algorithm, "use": "sig"}


def _new_private_key(algorithm: str) -> SigningPrivateKey:
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unsupported signing algorithm {algorithm!r}; use one of {list(SIGNING_ALGORITHMS)}")
