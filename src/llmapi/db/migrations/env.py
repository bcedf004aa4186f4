"""Alembic environment: runs on the connection that `llmapi.db.migrate` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from llmapi.db.models import Base


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "run migrations through llmapi.db.migrate.upgrade(url) (or `llmapi migrate`), "
        "not through the alembic command line"
    )
run_migrations(connection)
