"""Database fixtures: every test that asks for `database_url` runs on SQLite and on real PostgreSQL.

PostgreSQL tests use a fresh schema of the shared `test` database (via `?search_path=`) and drop it after.
Where PostgreSQL is unreachable they skip, unless LLMAPI_REQUIRE_SERVICES=1 makes that a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from llmapi.db.database import Database
from llmapi.db.migrate import upgrade

POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"
POSTGRES_UNREACHABLE = "PostgreSQL at 127.0.0.1:5432 is not reachable"
CONNECT_TIMEOUT_S = 2.0


@pytest.fixture(scope="session")
async def postgres_dsn() -> str:
    """The PostgreSQL DSN once it has answered; checked once per session."""
    try:
        connection = await asyncpg.connect(POSTGRES_DSN, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        if os.environ.get("LLMAPI_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{POSTGRES_UNREACHABLE} ({exc}) and LLMAPI_REQUIRE_SERVICES=1")
        pytest.skip(POSTGRES_UNREACHABLE)
    await connection.close()
    return POSTGRES_DSN


@pytest.fixture
async def postgres_url(postgres_dsn: str) -> AsyncIterator[str]:
    """An async-driver URL whose connections live in a new, empty schema."""
    schema = f"llmapi_test_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(postgres_dsn, timeout=CONNECT_TIMEOUT_S)
    try:
        await connection.execute(f'CREATE SCHEMA "{schema}"')
        yield postgres_dsn.replace("postgresql://", "postgresql+asyncpg://") + f"?search_path={schema}"
    finally:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await connection.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'llmapi.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """An empty database of each kind, not yet migrated."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A migrated database of each kind."""
    await upgrade(database_url)
    db = Database(database_url)
    try:
        yield db
    finally:
        await db.dispose()
