from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from llmapi.auth.key_encryption import KeyEncryption
from llmapi.auth.secret_key import key_encryption, read_or_create
from llmapi.auth.signing_keys import generate_signing_key
from llmapi.config import ConfigError

PEM = generate_signing_key("ES256").private_key_pem
SECRET = "a-secret-key-of-more-than-32-characters"


def test_a_key_file_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "llmapi.secret"
    secret = read_or_create(path)
    assert len(secret) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_or_create(path) == secret
    assert [p.name for p in path.parent.iterdir()] == ["llmapi.secret"]  # no temporary file left


def test_instances_starting_together_agree_on_one_secret(tmp_path: Path) -> None:
    path = tmp_path / "llmapi.secret"
    with ThreadPoolExecutor(8) as pool:
        found = set(pool.map(lambda _: read_or_create(path), range(32)))
    assert found == {path.read_text().strip()}


def test_a_short_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "llmapi.secret"
    path.write_text("short\n")
    with pytest.raises(ConfigError, match="32 characters"):
        read_or_create(path)


def test_the_secret_given_wins_and_makes_no_file(tmp_path: Path) -> None:
    path = tmp_path / "llmapi.secret"
    sealed = key_encryption(secret=SECRET, previous=None, key_file=path, shared_database=False).seal(PEM)
    assert KeyEncryption(SECRET).unseal(sealed) == PEM
    assert not path.exists()


def test_a_shared_database_needs_a_secret_every_instance_holds(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="LLMAPI_SECRET_KEY is required with PostgreSQL"):
        key_encryption(secret=None, previous=None, key_file=None, shared_database=True)
    missing = tmp_path / "mounted.secret"
    with pytest.raises(ConfigError, match="does not exist"):
        key_encryption(secret=None, previous=None, key_file=missing, shared_database=True)
    assert not missing.exists()
    missing.write_text(SECRET)
    sealed = key_encryption(secret=None, previous=None, key_file=missing, shared_database=True).seal(PEM)
    assert KeyEncryption(SECRET).unseal(sealed) == PEM


def test_an_in_memory_database_gets_a_secret_of_its_own() -> None:
    encryption = key_encryption(secret=None, previous=None, key_file=None, shared_database=False)
    assert encryption.unseal(encryption.seal(PEM)) == PEM
