from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from llmapi.db.database import Database
from llmapi.db.engine import DatabaseURLError, create_engine, sqlite_file
from llmapi.db.migrate import upgrade, upgrade_engine
from llmapi.db.models import AuditEntry
from llmapi.db.repositories.audit_log import AuditLog


async def test_sqlite_file_gets_wal_busy_timeout_and_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "llmapi.db"
    database = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with database.session() as session:
            journal_mode = await session.scalar(text("PRAGMA journal_mode"))
            busy_timeout = await session.scalar(text("PRAGMA busy_timeout"))
    finally:
        await database.dispose()

    assert path.parent.is_dir()
    assert (journal_mode, busy_timeout) == ("wal", 5000)


def modes(path: Path) -> dict[str, int]:
    """The permission bits of a SQLite database and of its -wal and -shm files."""
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return {file.name: stat.S_IMODE(file.stat().st_mode) for file in files}


async def test_sqlite_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "llmapi.db"
    umask = os.umask(0o022)  # the usual one, under which files are made 0644
    try:
        await upgrade(f"sqlite+aiosqlite:///{path}")
        database = Database(f"sqlite+aiosqlite:///{path}")
        try:
            async with database.session() as session:  # written, and held open: -wal and -shm exist
                await AuditLog(session).record(
                    actor_id="a", action="x", target_type="t", target_id="1", details={}
                )
                assert set(modes(path).values()) == {0o600}, modes(path)
        finally:
            await database.dispose()
    finally:
        os.umask(umask)


def open_to_others(path: Path) -> None:
    """As a database made before files were private: 0644, with its -wal and -shm files."""
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        file.touch()
        file.chmod(0o644)


async def test_an_existing_database_readable_by_others_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    await upgrade(f"sqlite+aiosqlite:///{path}")
    open_to_others(path)
    database = Database(f"sqlite+aiosqlite:///{path}")
    await database.dispose()
    assert set(modes(path).values()) == {0o600}, modes(path)


def test_sqlite_file_names_the_database_file() -> None:
    assert sqlite_file("sqlite+aiosqlite:///data/llmapi.db") == Path("data/llmapi.db")
    assert sqlite_file("sqlite+aiosqlite:////abs/llmapi.db") == Path("/abs/llmapi.db")
    assert sqlite_file("sqlite+aiosqlite://") is None
    assert sqlite_file("sqlite+aiosqlite:///:memory:") is None
    assert sqlite_file("postgresql+asyncpg://u@h/db") is None


async def test_in_memory_sqlite_keeps_one_database_across_sessions() -> None:
    url = "sqlite+aiosqlite://"
    database = Database(url)
    try:
        async with database.session() as session:
            await session.execute(text("CREATE TABLE t (x INTEGER)"))
            await session.execute(text("INSERT INTO t VALUES (1)"))
        async with database.session() as session:
            assert await session.scalar(text("SELECT count(*) FROM t")) == 1
    finally:
        await database.dispose()


async def test_postgres_search_path_comes_from_the_url(postgres_url: str) -> None:
    schema = postgres_url.rsplit("search_path=", 1)[1]
    database = Database(postgres_url)
    try:
        async with database.session() as session:
            assert await session.scalar(text("SELECT current_schema()")) == schema
    finally:
        await database.dispose()


def test_other_drivers_are_refused_with_the_urls_to_use() -> None:
    with pytest.raises(DatabaseURLError, match=r"sqlite\+aiosqlite:///"):
        create_engine("mysql+aiomysql://root@localhost/db")


async def test_session_commits_on_success_and_rolls_back_on_error(database: Database) -> None:
    async with database.session() as session:
        await AuditLog(session).record(actor_id="a", action="kept", target_type="t", target_id=None)

    async def record_then_fail() -> None:
        async with database.session() as session:
            await AuditLog(session).record(actor_id="a", action="lost", target_type="t", target_id=None)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await record_then_fail()

    async with database.session() as session:
        entries = await AuditLog(session).list()

    assert [entry.action for entry in entries] == ["kept"]
    assert isinstance(entries[0], AuditEntry)


async def test_upgrade_accepts_a_database_whose_directory_does_not_exist(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'new' / 'llmapi.db'}"

    await upgrade(url)

    assert (tmp_path / "new" / "llmapi.db").is_file()


async def test_an_in_memory_database_is_migrated_through_its_engine() -> None:
    database = Database("sqlite+aiosqlite:///:memory:")
    try:
        await upgrade_engine(database.engine)
        async with database.session() as session:
            await AuditLog(session).record(actor_id=None, action="boot", target_type="server", target_id=None)
        async with database.session() as session:
            assert [entry.action for entry in await AuditLog(session).list()] == ["boot"]
    finally:
        await database.dispose()
