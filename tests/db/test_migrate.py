from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect

from llmapi.db.engine import create_engine
from llmapi.db.migrate import alembic_config, upgrade
from llmapi.db.models import Base

CONCURRENT_UPGRADE_TIMEOUT_S = 60
TABLES = {
    "api_keys",
    "oauth_clients",
    "signing_keys",
    "audit_log",
    "usage_records",
    "responses",
    "alembic_version",
}


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _schema_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def _run_on(url: str, check: Any) -> Any:
    engine = create_engine(url, pooled=False)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(check)
    finally:
        await engine.dispose()


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(url: str) -> str | None:
    """The revision the database at `url` is on, or None before the first migration."""
    revision: str | None = await _run_on(url, _revision)
    return revision


async def test_upgrade_from_empty_to_head(database_url: str) -> None:
    assert await current_revision(database_url) is None

    await upgrade(database_url)

    assert await current_revision(database_url) == head_revision() == "0002"
    assert await _run_on(database_url, _table_names) == TABLES


async def test_second_upgrade_is_a_no_op(database_url: str) -> None:
    await upgrade(database_url)
    await upgrade(database_url)

    assert await current_revision(database_url) == head_revision()


async def test_migrations_match_the_models(database_url: str) -> None:
    await upgrade(database_url)

    assert await _run_on(database_url, _schema_differences) == []


async def test_concurrent_upgrades_in_one_process_on_postgres(postgres_url: str) -> None:
    upgrades = asyncio.gather(*(upgrade(postgres_url) for _ in range(3)), return_exceptions=True)
    results = await asyncio.wait_for(upgrades, timeout=CONCURRENT_UPGRADE_TIMEOUT_S)

    assert [r for r in results if isinstance(r, BaseException)] == []
    assert await current_revision(postgres_url) == head_revision()


async def test_two_instances_starting_at_once(database_url: str) -> None:
    script = f"import asyncio; from llmapi.db.migrate import upgrade; asyncio.run(upgrade({database_url!r}))"
    processes = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", script, stderr=asyncio.subprocess.PIPE)
        for _ in range(2)
    ]
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(process.communicate() for process in processes)), CONCURRENT_UPGRADE_TIMEOUT_S
    )

    assert [(p.returncode, err.decode()[-500:]) for p, (_, err) in zip(processes, outcomes, strict=True)] == [
        (0, ""),
        (0, ""),
    ]
    assert await current_revision(database_url) == head_revision()


async def test_migration_scripts_ship_inside_the_package() -> None:
    from llmapi.db import migrate

    versions = sorted(p.name for p in (migrate.MIGRATIONS_DIR / "versions").glob("*.py"))
    assert (migrate.MIGRATIONS_DIR / "env.py").is_file()
    assert "0001_initial.py" in versions


def test_alembic_command_line_is_pointed_at_the_helper() -> None:
    from alembic import command

    from llmapi.db.migrate import alembic_config

    with pytest.raises(RuntimeError, match=r"llmapi\.db\.migrate\.upgrade"):
        command.upgrade(alembic_config(), "head")
