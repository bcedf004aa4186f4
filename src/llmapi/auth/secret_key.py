"""Where the secret that encrypts signing keys at rest comes from: never the database it protects.

In order: the secret given (LLMAPI_SECRET_KEY); else a key file, read or, beside a database that only this
host uses (a SQLite file), created with mode 0600; else, for an in-memory database that dies with the
process, a secret of this process alone. A database several instances share (PostgreSQL) needs a secret
they all hold, which no instance can make up on its own: without one, the server refuses to start.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from llmapi.auth.key_encryption import KeyEncryption
from llmapi.config import ConfigError

logger = logging.getLogger(__name__)

MIN_SECRET_CHARS = 32
MAKE_ONE = "make one with `openssl rand -base64 48`"


def key_encryption(
    *, secret: str | None, previous: str | None, key_file: Path | None, shared_database: bool
) -> KeyEncryption:
    """The encryption of signing keys at rest. `key_file` is read when no secret is given; it is created
    when missing unless the database is shared. Raises ConfigError when a shared database has neither."""
    old = (previous,) if previous else ()
    if secret:
        return KeyEncryption(secret, *old)
    if key_file is not None:
        if key_file.exists() or not shared_database:
            return KeyEncryption(read_or_create(key_file), *old)
        raise ConfigError(
            f"the secret key file {key_file} does not exist; with PostgreSQL every instance needs the same "
            f"secret key: {MAKE_ONE} and give it to every instance as LLMAPI_SECRET_KEY or in that file"
        )
    if shared_database:
        raise ConfigError(
            "LLMAPI_SECRET_KEY is required with PostgreSQL: it encrypts the token signing keys in the "
            f"database, and every instance needs the same one; {MAKE_ONE} and give it to every instance "
            "(or set LLMAPI_SECRET_KEY_FILE to a file every instance has)"
        )
    return KeyEncryption(secrets.token_urlsafe(32), *old)


def read_or_create(path: Path) -> str:
    """The secret in `path`, made first (random, mode 0600) when the file does not exist."""
    if not path.exists():
        _create(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        logger.warning(
            "the secret key file %s can be read by other users (mode %o); `chmod 600` it", path, mode
        )
    secret = path.read_text(encoding="utf-8").strip()
    if len(secret) < MIN_SECRET_CHARS:
        raise ConfigError(
            f"the secret key file {path} holds fewer than {MIN_SECRET_CHARS} characters; {MAKE_ONE} "
            "into it (only once no signing key was encrypted with the old one)"
        )
    return secret


def _create(path: Path) -> None:
    """Write a new secret to a private temporary file, then link it into place: another process starting
    at the same moment either wins (and both read its secret) or finds the whole file, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(secrets.token_urlsafe(32) + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
        logger.warning(
            "created the secret key file %s (mode 0600): it decrypts the token signing keys; keep it, and "
            "keep it apart from backups of the database",
            path,
        )
    except FileExistsError:
        pass
    finally:
        temporary.unlink(missing_ok=True)
