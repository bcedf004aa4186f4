"""Annotated dependencies the routes take. Each is `async def`: FastAPI runs a plain `def` dependency in
its thread pool, a cost paid on every request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from pydantic import BaseModel
from starlette.responses import Response

from llmapi.api.security import PrincipalDep
from llmapi.api.usage_middleware import USAGE_NOTE
from llmapi.auth.principal import Principal
from llmapi.backends.registry import ModelRegistry
from llmapi.config import Settings
from llmapi.services.admission import Gatekeeper
from llmapi.services.identity import Identity
from llmapi.services.response_cache import CacheLookup, Kind, ResponseCache
from llmapi.services.usage import UsageNote


async def get_registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_usage_note(request: Request) -> UsageNote:
    note = request.scope.get("state", {}).get(USAGE_NOTE)
    return note if isinstance(note, UsageNote) else UsageNote()


RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
UsageNoteDep = Annotated[UsageNote, Depends(get_usage_note)]


async def get_identity(request: Request) -> Identity:
    identity: Identity = request.app.state.identity
    return identity


IdentityDep = Annotated[Identity, Depends(get_identity)]


class Admit:
    """Charges the calling principal's limits for this request; its response carries the limit headers."""

    def __init__(self, request: Request, principal: Principal) -> None:
        self._request = request
        self._principal = principal

    async def __call__(self, *, model: str | None, tokens: int) -> None:
        gatekeeper: Gatekeeper = self._request.app.state.gatekeeper
        admission = await gatekeeper.admit(self._principal, model=model, tokens=tokens)
        self._request.state.admission = admission


class CacheFor:
    """The response cache, for this request's principal and `Cache-Control` header."""

    def __init__(self, request: Request, principal: Principal) -> None:
        self._cache: ResponseCache = request.app.state.response_cache
        self._principal = principal
        self._cache_control = request.headers.get("cache-control")

    def lookup(self, kind: Kind, body: BaseModel, *, max_tokens: int | None = None) -> CacheLookup:
        return self._cache.lookup(
            self._principal, kind, body, max_tokens=max_tokens, cache_control=self._cache_control
        )


async def get_admit(request: Request, principal: PrincipalDep) -> Admit:
    return Admit(request, principal)


async def get_cache(request: Request, principal: PrincipalDep) -> CacheFor:
    return CacheFor(request, principal)


AdmitDep = Annotated[Admit, Depends(get_admit)]
CacheDep = Annotated[CacheFor, Depends(get_cache)]


def with_cache_status(response: Response, lookup: CacheLookup) -> Response:
    """`x-cache: HIT|MISS` on every response that could come from the cache."""
    if lookup.status is not None:
        response.headers["x-cache"] = lookup.status
    return response
