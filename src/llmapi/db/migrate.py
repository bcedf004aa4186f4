"""Bring a database to the newest schema: safe at every start-up and when several replicas start at once.

Alembic is configured here in code (no alembic.ini); the migration scripts ship inside this package.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from llmapi.db.engine import create_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant shared by every instance will do; this one spells "llmapi" in ASCII.
UPGRADE_LOCK_KEY = 0x6C6C6D617069


def alembic_config(connection: Connection | None = None) -> Config:
    """The Alembic configuration; with a connection, migrations run on it (see migrations/env.py)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


async def upgrade(url: str) -> None:
    """Run `alembic upgrade head` on `url`; a no-op when the schema is already current."""
    engine = create_engine(url, pooled=False)
    try:
        await upgrade_engine(engine)
    finally:
        await engine.dispose()


async def upgrade_engine(engine: AsyncEngine) -> None:
    """`upgrade` on an engine you already hold, e.g. `Database.engine` of an in-memory SQLite database."""
    async with engine.connect() as connection:
        await connection.run_sync(_upgrade_to_head)


def _upgrade_to_head(connection: Connection) -> None:
    # Both locks are released at commit; a second instance waits here, then finds the schema current.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK_KEY})
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    command.upgrade(alembic_config(connection), "head")
    connection.commit()
