"""What authentication adds to a request: `Authenticator.authenticate` on the real stores, p50 and p99.

    .venv/bin/python -m bench.auth.run [--requests 2000]

API keys with the auth cache (the default 30 s TTL: one database lookup, then memory) and without it (TTL 0:
a database lookup per request), on SQLite and on PostgreSQL (127.0.0.1:5432, database `test`, skipped when
unreachable); and this server's own JWT access tokens (an ES256 signature check, no database).
Writes bench/auth/results.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from llmapi.auth.access_tokens import AccessTokens
from llmapi.auth.authenticator import Authenticator
from llmapi.auth.key_ring import KeyRing
from llmapi.auth.scopes import Scope
from llmapi.auth.secrets import new_secret
from llmapi.db.database import Database
from llmapi.db.migrate import upgrade
from llmapi.db.repositories.api_keys import ApiKeyRepository
from llmapi.services.identity_stores import ApiKeysInDatabase, SigningKeysInDatabase
from llmapi.types import RateLimits

RESULTS = Path(__file__).parent / "results.md"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


async def timings(call: Callable[[], Awaitable[object]], requests: int) -> tuple[float, float]:
    for _ in range(50):
        await call()
    samples = []
    for _ in range(requests):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1e6)
    quantiles = statistics.quantiles(samples, n=100)
    return quantiles[49], quantiles[98]


async def measure(url: str, requests: int) -> dict[str, tuple[float, float]]:
    await upgrade(url)
    db = Database(url)
    secret = new_secret()
    async with db.session() as session:
        await ApiKeyRepository(session).create(
            name="bench",
            key_hash=secret.hash,
            display_prefix=secret.display_prefix,
            role="service",
            scopes=None,
            rate_limits=RateLimits(),
            expires_at=None,
            created_by=None,
        )
    ring = KeyRing(SigningKeysInDatabase(db))
    await ring.load()
    tokens = AccessTokens(ring, issuer="llmapi", audience="llmapi")
    token = tokens.issue(subject="bench", scopes=[Scope.CHAT.value], role="service", ttl_seconds=3600).token
    results = {}
    for label, ttl in (("API key, auth cache on", 30.0), ("API key, auth cache off", 0.0)):
        authenticator = Authenticator(
            api_keys=ApiKeysInDatabase(db),
            tokens=tokens,
            external=None,
            admin_key=None,
            cache_ttl=ttl,
            invalidation=None,
        )
        results[label] = await timings(lambda a=authenticator: a.authenticate(secret.plaintext), requests)
    results["JWT access token"] = await timings(lambda: authenticator.authenticate(token), requests)
    await db.dispose()
    return results


async def postgres_url() -> str | None:
    try:
        connection = await asyncpg.connect(POSTGRES, timeout=2)
    except (OSError, asyncpg.PostgresError):
        return None
    schema = f"llmapi_bench_{uuid.uuid4().hex[:8]}"
    await connection.execute(f'CREATE SCHEMA "{schema}"')
    await connection.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/test?search_path={schema}"


async def drop_schema(url: str) -> None:
    schema = url.rsplit("=", 1)[1]
    connection = await asyncpg.connect(POSTGRES, timeout=2)
    await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    await connection.close()


async def main(requests: int) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        sqlite = await measure(f"sqlite+aiosqlite:///{directory}/bench.db", requests)
        rows += [("SQLite", label, *values) for label, values in sqlite.items()]
    url = await postgres_url()
    if url is not None:
        try:
            postgres = await measure(url, requests)
            rows += [("PostgreSQL", label, *values) for label, values in postgres.items()]
        finally:
            await drop_schema(url)
    table = "| store | credential | p50 µs | p99 µs |\n|---|---|---|---|\n"
    table += "".join(f"| {store} | {label} | {p50:.0f} | {p99:.0f} |\n" for store, label, p50, p99 in rows)
    header = (
        "# Authentication cost per request\n\n"
        f"`python -m bench.auth.run --requests {requests}` on {os.cpu_count()} cores: "
        "`Authenticator.authenticate` with the real stores, after 50 warm-up calls. "
        "The JWT check reads no database.\n\n"
    )
    RESULTS.write_text(header + table)
    print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    asyncio.run(main(parser.parse_args().requests))
