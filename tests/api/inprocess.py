"""The whole HTTP stack in this process: `create_app` behind `httpx.ASGITransport`, lifespan included, on a
fresh SQLite file, serving the backends a test gives it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from tests.servers import ADMIN_HEADERS, ADMIN_KEY

from llmapi.app import create_app
from llmapi.backends.base import Backend
from llmapi.backends.registry import ModelRegistry
from llmapi.config import Settings


@dataclass(frozen=True)
class InProcess:
    app: FastAPI
    client: httpx.AsyncClient
    database: Path

    async def new_key(self, **fields: Any) -> dict[str, str]:
        """Headers with a new API key made through the admin API (`fields` as POST /v1/admin/keys takes)."""
        response = await self.client.post(
            "/v1/admin/keys", json={"name": "test", **fields}, headers=ADMIN_HEADERS
        )
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['key']}"}


@asynccontextmanager
async def in_process(
    directory: Path, *backends: Backend, fallbacks: dict[str, list[str]] | None = None, **settings: Any
) -> AsyncIterator[InProcess]:
    database = directory / "llmapi.db"
    app = create_app(
        Settings(database_url=f"sqlite:///{database}", admin_key=ADMIN_KEY, **settings),
        ModelRegistry(backends, fallbacks),
    )
    async with app.router.lifespan_context(app):
        while not app.state.registry.ready:  # noqa: ASYNC110 (the registry has no event to wait on)
            await asyncio.sleep(0.01)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://llmapi.test") as client:
            yield InProcess(app, client, database)
