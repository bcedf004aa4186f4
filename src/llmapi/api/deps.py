"""Annotated dependencies the routes take. Each is `async def`: FastAPI runs a plain `def` dependency in
its thread pool, a cost paid on every request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from llmapi.api.security import PrincipalDep
from llmapi.backends.registry import ModelRegistry
from llmapi.services.identity import Identity
from llmapi.services.inference import Inference
from llmapi.services.request_context import RequestContext
from llmapi.services.response_store import ResponseStore


async def get_registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


async def get_identity(request: Request) -> Identity:
    identity: Identity = request.app.state.identity
    return identity


async def get_inference(request: Request, principal: PrincipalDep) -> Inference:
    state = request.app.state
    return Inference(
        context=RequestContext.of(request.scope),
        principal=principal,
        registry=state.registry,
        gatekeeper=state.gatekeeper,
        response_cache=state.response_cache,
        default_max_tokens=state.settings.default_max_tokens,
        cache_control=request.headers.get("cache-control"),
    )


async def get_response_store(request: Request, principal: PrincipalDep) -> ResponseStore:
    identity: Identity = request.app.state.identity
    return ResponseStore(identity.db, principal)


RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
IdentityDep = Annotated[Identity, Depends(get_identity)]
InferenceDep = Annotated[Inference, Depends(get_inference)]
ResponseStoreDep = Annotated[ResponseStore, Depends(get_response_store)]
