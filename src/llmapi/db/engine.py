"""One place that turns a database URL into an AsyncEngine with the settings each backend needs.

SQLite files get WAL and a busy timeout (readers never block the writer; writers wait instead of failing).
PostgreSQL URLs may carry `?search_path=schema`: it is applied to every connection as a server setting,
so a deployment (or a test) can live in its own schema of a shared database.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool, StaticPool
from tenacity import retry, retry_if_exception, stop_after_delay, wait_random_exponential

SQLITE_BUSY_TIMEOUT_MS = 5_000
POSTGRES_POOL_SIZE = 10
POSTGRES_MAX_OVERFLOW = 10
POSTGRES_POOL_RECYCLE_S = 1_800


class DatabaseURLError(ValueError):
    """The URL names a database this server cannot use; the message says what to write instead."""


def create_engine(url: str, *, pooled: bool = True) -> AsyncEngine:
    """An engine for a `sqlite+aiosqlite://` or `postgresql+asyncpg://` URL; `pooled=False` for one-offs."""
    parsed = make_url(url)
    if parsed.drivername == "sqlite+aiosqlite":
        return _sqlite_engine(parsed, pooled=pooled)
    if parsed.drivername == "postgresql+asyncpg":
        return _postgres_engine(parsed, pooled=pooled)
    raise DatabaseURLError(
        f"unsupported database driver '{parsed.drivername}'; use sqlite+aiosqlite:///path/to/llmapi.db "
        "or postgresql+asyncpg://user@host/db"
    )


def _sqlite_engine(url: URL, *, pooled: bool) -> AsyncEngine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or "mode=memory" in database
    if in_memory:
        # Each new connection to :memory: is a new, empty database: keep exactly one.
        return create_async_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    if not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {} if pooled else {"poolclass": NullPool}
    engine = create_async_engine(url, **options)
    event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        _use_write_ahead_log(cursor)
    finally:
        cursor.close()


def _is_locked(error: BaseException) -> bool:
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


# Switching a file to WAL needs an exclusive lock and SQLite does not wait for it (no busy handler), so two
# instances opening a new database at once may collide: look first, and retry the switch within the timeout.
@retry(
    retry=retry_if_exception(_is_locked),
    stop=stop_after_delay(SQLITE_BUSY_TIMEOUT_MS / 1000),
    wait=wait_random_exponential(multiplier=0.01, max=0.25),
    reraise=True,
)
def _use_write_ahead_log(cursor: Any) -> None:
    cursor.execute("PRAGMA journal_mode")
    if cursor.fetchone()[0] != "wal":
        cursor.execute("PRAGMA journal_mode=WAL")


def _postgres_engine(url: URL, *, pooled: bool) -> AsyncEngine:
    search_path = url.query.get("search_path")
    connect_args: dict[str, Any] = {}
    if search_path is not None:
        if not isinstance(search_path, str):
            raise DatabaseURLError("give search_path once in the database URL, e.g. ?search_path=llmapi")
        connect_args["server_settings"] = {"search_path": search_path}
        url = url.difference_update_query(["search_path"])
    if not pooled:
        return create_async_engine(url, poolclass=NullPool, connect_args=connect_args)
    return create_async_engine(
        url,
        connect_args=connect_args,
        pool_size=POSTGRES_POOL_SIZE,
        max_overflow=POSTGRES_MAX_OVERFLOW,
        pool_recycle=POSTGRES_POOL_RECYCLE_S,
        pool_pre_ping=True,
    )
