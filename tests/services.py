"""Real services the tests use: PostgreSQL and Redis on this machine. Where one is unreachable, the tests
that need it skip with the reason, unless LLMAPI_REQUIRE_SERVICES=1 makes that a failure (CI sets it)."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import pytest

POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"


def require_service(name: str, port: int) -> None:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError as exc:
        reason = f"{name} at 127.0.0.1:{port} is not reachable ({exc})"
        if os.environ.get("LLMAPI_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} and LLMAPI_REQUIRE_SERVICES=1")
        pytest.skip(reason)


def require_redis() -> str:
    require_service("Redis", 6379)
    return REDIS_URL


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A database URL whose connections live in a new, empty schema of the shared `test` database."""
    require_service("PostgreSQL", 5432)
    schema = f"llmapi_test_{uuid.uuid4().hex[:12]}"

    async def execute(statement: str) -> None:
        connection = await asyncpg.connect(POSTGRES_DSN, timeout=5)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(execute(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_DSN}?search_path={schema}"
    finally:
        asyncio.run(execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
