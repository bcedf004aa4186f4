"""One place that turns a database URL into an AsyncEngine with the settings each backend needs.

SQLite files get WAL and a busy timeout (readers never block the writer; writers wait instead of failing).
They are private to their owner: created with mode 0600 (SQLite gives its -wal and -shm files the mode of
the database), and an existing one that others may read is narrowed to 0600, with a warning.
PostgreSQL URLs may carry `?search_path=schema`: it is applied to every connection as a server setting,
so a deployment (or a test) can live in its own schema of a shared database.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool, StaticPool
from tenacity import retry, retry_if_exception, stop_after_delay, wait_random_exponential

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 5_000
SQLITE_FILE_MODE = 0o600
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
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


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names; None for an in-memory database and for other databases."""
    parsed = make_url(url)
    database = parsed.database or ""
    if not parsed.drivername.startswith("sqlite") or _in_memory(database):
        return None
    return Path(database.removeprefix("file:").split("?", 1)[0]).expanduser()


def _in_memory(database: str) -> bool:
    return database in ("", ":memory:") or "mode=memory" in database


def _sqlite_engine(url: URL, *, pooled: bool) -> AsyncEngine:
    database = url.database or ""
    if _in_memory(database):
        # Each new connection to :memory: is a new, empty database: keep exactly one.
        return create_async_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    if not database.startswith("file:"):
        _private_file(Path(database).expanduser())
    options: dict[str, Any] = {} if pooled else {"poolclass": NullPool}
    engine = create_async_engine(url, **options)
    event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
    return engine


def _private_file(path: Path) -> None:
    """Create the database file (empty is a valid SQLite database) readable by its owner only, or narrow an
    existing one (and its companions) to that."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SQLITE_FILE_MODE))
        return
    except FileExistsError:
        pass
    for file in (path, *(path.with_name(path.name + suffix) for suffix in SQLITE_COMPANIONS)):
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
            if mode & 0o077:
                os.chmod(file, SQLITE_FILE_MODE)
                logger.warning("%s could be read by other users (mode %o); it is now 0600", file, mode)
        except FileNotFoundError:
            continue
        except OSError as exc:
            logger.warning("%s can be read by other users and could not be made private: %s", file, exc)


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
