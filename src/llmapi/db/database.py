"""The Database: an engine plus a session factory, owned by the application's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from llmapi.db.engine import create_engine


class Database:
    """Create one per process at start-up, `await dispose()` at shutdown.

    `session()` is a unit of work: it commits when the block ends normally and rolls back on an exception.
    Objects stay readable after the commit (expire_on_commit=False).
    """

    def __init__(self, url: str) -> None:
        self._engine = create_engine(url)
        self._sessions = async_sessionmaker(self._engine, expire_on_commit=False)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self._engine.dispose()
