"""Annotated dependencies the routes take. Each is `async def`: FastAPI runs a plain `def` dependency in
its thread pool, a cost paid on every request.

`PROVIDERS` says how each of them (and the principal) is had from the request alone: the route classes
call the endpoint with those directly instead of having FastAPI solve the tree (`api/direct_call.py`).
A new dependency goes into it, or the routes that take it keep FastAPI's path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request

from llmapi.api.direct_call import Resolver
from llmapi.api.security import PrincipalDep, authenticate, current_principal
from llmapi.auth.principal import Principal
from llmapi.backends.registry import ModelRegistry
from llmapi.services.identity import Identity
from llmapi.services.inference import Inference
from llmapi.services.request_context import RequestContext
from llmapi.services.response_store import ResponseStore

T = TypeVar("T")


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


def _with_principal(
    provider: Callable[[Request, Principal], Awaitable[T]],
) -> Callable[[Request], Awaitable[T]]:
    async def resolve(request: Request) -> T:
        return await provider(request, await authenticate(request))

    return resolve


PROVIDERS: Mapping[Callable[..., Any], Resolver] = {
    current_principal: authenticate,
    get_registry: get_registry,
    get_identity: get_identity,
    get_inference: _with_principal(get_inference),
    get_response_store: _with_principal(get_response_store),
}
"""Each dependency above, as the value FastAPI would give the endpoint for it, from the request alone."""
