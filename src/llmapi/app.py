"""create_app(settings): the ASGI application, its lifespan, routers and error handlers."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from fastapi import FastAPI
from starlette.middleware import Middleware

from llmapi import __version__
from llmapi.api.context_middleware import RequestContextMiddleware
from llmapi.api.cors import cors_middleware
from llmapi.api.error_handlers import install_error_handlers
from llmapi.api.error_middleware import UnexpectedErrorMiddleware
from llmapi.api.metering_middleware import MeteringMiddleware
from llmapi.api.negotiation_middleware import NegotiationMiddleware
from llmapi.api.openapi_errors import with_error_answers
from llmapi.api.request_body import BodyDecoder
from llmapi.api.routes import ROUTERS
from llmapi.api.routing import heads_without_bodies
from llmapi.backends.registry import BackendMetrics, ModelRegistry
from llmapi.cache.memory_store import MemoryCacheStore
from llmapi.cache.redis_store import RedisCacheStore
from llmapi.config import Settings
from llmapi.observability.gateway_metrics import GatewayMetrics
from llmapi.observability.metrics import EngineStatsCollector, new_metrics_registry
from llmapi.ratelimit.memory_store import MemoryLimitStore
from llmapi.ratelimit.redis_store import RedisLimitStore
from llmapi.serialization.codecs import codecs
from llmapi.serialization.openapi import with_all_media_types
from llmapi.services.admission import Gatekeeper
from llmapi.services.identity import Identity
from llmapi.services.response_cache import ResponseCache
from llmapi.shared_redis import SharedRedis

logger = logging.getLogger(__name__)

AUTH_OFF_WARNING = (
    "AUTHENTICATION IS OFF (LLMAPI_AUTH=off): anyone who can reach this server may use every endpoint, "
    "the admin API included. Use this only for local development."
)

DESCRIPTION = """Errors come in OpenAI's shape (`ErrorResponse`) in the format asked for; each operation lists
the ones it can answer. Any request may also get, before it reaches an operation: 408 (its head or body did
not arrive in time), 431 (its head is too large), 503 (the server is at its connection limit) and, for a
fault of the server, 500. GET operations also answer HEAD."""


async def _load_then_freeze(registry: ModelRegistry) -> None:
    """Load the models, then move everything alive so far (the models' hundreds of thousands of objects) out
    of the garbage collector's sight: full collections otherwise walk them all and pause the event loop for
    about 300 ms each (measured in bench/gateway)."""
    await registry.start()
    gc.collect()
    gc.freeze()


def create_app(settings: Settings, registry: ModelRegistry | None = None) -> FastAPI:
    """The app serves at once; models load in the background and /health/ready turns 200 when they are in."""
    metrics_registry = new_metrics_registry()
    served = registry or ModelRegistry.from_settings(settings, BackendMetrics.on(metrics_registry))
    metrics_registry.register(EngineStatsCollector(served.engine_stats))
    identity = Identity(settings)
    gateway_metrics = GatewayMetrics(metrics_registry)
    shared_redis = (
        SharedRedis.from_url(settings.redis_url, on_error=gateway_metrics.redis_error)
        if settings.redis_url
        else None
    )
    if shared_redis is not None:
        gateway_metrics.watch_redis(lambda: shared_redis.degraded)
    gatekeeper = Gatekeeper(
        settings.limits,
        local=MemoryLimitStore(),
        shared=RedisLimitStore(shared_redis.client) if shared_redis else None,
        redis=shared_redis,
        metrics=gateway_metrics,
    )
    response_cache = ResponseCache(
        settings.cache,
        store=RedisCacheStore(shared_redis.client, settings.cache.max_entry_bytes)
        if shared_redis
        else MemoryCacheStore(settings.cache.max_bytes, settings.cache.max_entry_bytes),
        redis=shared_redis,
        metrics=gateway_metrics,
    )
    formats = codecs(max_depth=settings.max_nesting_depth)
    body_decoder = BodyDecoder(codecs=formats, max_body_bytes=settings.max_body_bytes)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await identity.start()
        if settings.auth == "off":
            logger.warning(AUTH_OFF_WARNING)
        loading = asyncio.create_task(_load_then_freeze(served), name="load-models")
        try:
            yield
        finally:
            loading.cancel()
            with suppress(asyncio.CancelledError):
                await loading
            await served.close()
            body_decoder.close()
            await identity.close()
            await response_cache.close()
            if shared_redis is not None:
                await shared_redis.close()

    # Outermost first. Request bodies are read later, by each route, once its caller is known.
    middleware = [
        # The request's context; its x-request-id and the security headers, on every response.
        Middleware(RequestContextMiddleware),
        # CORS, when origins are set: preflights answered here, with an id and the security headers but
        # before metering (not usage), negotiation (no 406) and the route (no credential asked).
        *([cors_middleware(settings.cors_origins)] if settings.cors_origins else []),
        # When the response is over: settle the admission, record usage; limit and cache headers.
        Middleware(MeteringMiddleware, recorder=identity.usage, metrics=gateway_metrics),
        # The answer in the format Accept asks for, errors included.
        Middleware(NegotiationMiddleware, codecs=formats),
        # An unexpected exception as a 500 in the OpenAI shape, so the layers above treat it as any answer.
        Middleware(UnexpectedErrorMiddleware),
    ]
    docs = settings.docs == "on"
    app = FastAPI(
        title="llmapi",
        version=__version__,
        summary="An OpenAI-compatible API in front of language models.",
        description=DESCRIPTION,
        lifespan=lifespan,
        middleware=middleware,
        # Starlette builds a trailing-slash redirect from the request's Host; as OpenAI's, such paths are 404.
        redirect_slashes=False,
        openapi_url="/openapi.json" if docs else None,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
    )
    app.state.settings = settings
    app.state.registry = served
    app.state.metrics = metrics_registry
    app.state.identity = identity
    app.state.authenticator = identity.authenticator if settings.auth == "on" else None
    app.state.gatekeeper = gatekeeper
    app.state.response_cache = response_cache
    app.state.shared_redis = shared_redis
    app.state.body_decoder = body_decoder
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    _document_truthfully(app)
    return app


def _document_truthfully(app: FastAPI) -> None:
    """Every error an operation can answer, in every format it can be asked for; HEAD answers bodiless."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = heads_without_bodies(with_all_media_types(with_error_answers(generate())))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
