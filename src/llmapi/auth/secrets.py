"""High-entropy credentials (API keys, client secrets): made here, shown once, stored only as a hash.

They are 256 random bits, so a fast hash (SHA-256) is as safe as a slow one and keeps authentication cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

API_KEY_PREFIX = "llmapi-"
CLIENT_SECRET_PREFIX = "llmapi-cs-"
DISPLAY_CHARS = 6


@dataclass(frozen=True, slots=True)
class NewSecret:
    plaintext: str
    display_prefix: str
    hash: str


def new_secret(prefix: str = API_KEY_PREFIX) -> NewSecret:
    plaintext = prefix + secrets.token_urlsafe(32)
    return NewSecret(plaintext, plaintext[: len(prefix) + DISPLAY_CHARS], hash_secret(plaintext))


def hash_secret(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def matches(plaintext: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(plaintext), stored_hash)
