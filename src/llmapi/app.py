"""create_app(settings): the ASGI application, its lifespan, routers and error handlers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI

from llmapi import __version__
from llmapi.api.error_handlers import install_error_handlers
from llmapi.api.request_id import RequestIdMiddleware
from llmapi.api.routes import (
    admin,
    chat,
    completions,
    embeddings,
    generate,
    health,
    me,
    metrics,
    models,
    oauth,
    sentiment,
)
from llmapi.api.usage_middleware import UsageMiddleware
from llmapi.backends.registry import ModelRegistry
from llmapi.config import Settings
from llmapi.observability.engine_metrics import EngineMetrics
from llmapi.observability.metrics import EngineStatsCollector, new_metrics_registry
from llmapi.services.identity import Identity

logger = logging.getLogger(__name__)

AUTH_OFF_WARNING = (
    "AUTHENTICATION IS OFF (LLMAPI_AUTH=off): anyone who can reach this server may use every endpoint, "
    "the admin API included. Use this only for local development."
)


def create_app(settings: Settings, registry: ModelRegistry | None = None) -> FastAPI:
    """The app serves at once; models load in the background and /health/ready turns 200 when they are in."""
    metrics_registry = new_metrics_registry()
    served = registry or ModelRegistry.from_settings(settings, EngineMetrics(metrics_registry))
    metrics_registry.register(EngineStatsCollector(served.engine_stats))
    identity = Identity(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await identity.start()
        if settings.auth == "off":
            logger.warning(AUTH_OFF_WARNING)
        loading = asyncio.create_task(served.start(), name="load-models")
        try:
            yield
        finally:
            loading.cancel()
            with suppress(asyncio.CancelledError):
                await loading
            await served.close()
            await identity.close()

    app = FastAPI(
        title="llmapi",
        version=__version__,
        summary="An OpenAI-compatible API in front of language models.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.registry = served
    app.state.metrics = metrics_registry
    app.state.identity = identity
    app.state.authenticator = identity.authenticator if settings.auth == "on" else None
    app.add_middleware(UsageMiddleware, recorder=identity.usage)
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    routers = (health, metrics, models, chat, completions, embeddings, generate, sentiment, me, admin, oauth)
    for module in routers:
        app.include_router(module.router)
    return app
