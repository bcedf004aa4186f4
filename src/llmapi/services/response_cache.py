"""The response cache as requests see it: whether a request may be answered from the cache, and the lookup.

The key is a hash of the canonical request (the model, the input and every parameter that changes the
output; never the raw body), in the caller's own namespace unless the cache is configured as shared.
Only deterministic requests (temperature 0, or a seed) are cached unless configured otherwise.
`Cache-Control: no-cache` skips the read, `no-store` the write. A failing Redis is a miss, never an error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from llmapi.auth.principal import Principal
from llmapi.cache.keys import cache_key
from llmapi.cache.store import CacheStore
from llmapi.config import CacheSettings
from llmapi.observability.gateway_metrics import GatewayMetrics
from llmapi.protocol.common import SamplingFields
from llmapi.shared_redis import RedisUnavailableError, SharedRedis

logger = logging.getLogger(__name__)

Model = TypeVar("Model", bound=BaseModel)
Kind = Literal["chat", "completions", "generate", "embeddings"]
CacheStatus = Literal["HIT", "MISS"]

# Request fields that do not change the output: they stay out of the key.
_NOT_OUTPUT = {"stream", "stream_options", "user", "metadata", "store", "service_tier", "encoding_format"}
_MAX_TOKENS_ALIASES = {"max_tokens", "max_completion_tokens"}


class CacheLookup:
    """One request's view of the cache: `get` before the work, `put` after it; `status` for `x-cache`."""

    def __init__(
        self, cache: ResponseCache | None, kind: Kind, key: str | None, *, read: bool, write: bool
    ) -> None:
        self._cache, self._kind, self._key = cache, kind, key
        self._read, self._write = read, write
        self.status: CacheStatus | None = None if key is None else "MISS"

    async def get(self, model: type[Model]) -> Model | None:
        if self._cache is None or self._key is None or not self._read:
            self._count("bypass")
            return None
        raw = await self._cache.read(self._key)
        found = _parse(model, raw)
        self._count("hit" if found is not None else "miss")
        if found is not None:
            self.status = "HIT"
        return found

    async def put(self, value: BaseModel) -> None:
        if self._cache is not None and self._key is not None and self._write:
            await self._cache.write(self._key, value.model_dump_json().encode())

    def _count(self, result: str) -> None:
        if self._cache is not None and self._key is not None:
            self._cache.metrics.cache_lookups.labels(self._kind, result).inc()


# A request the cache plays no part in: no key, so no status, no lookup, no metric.
NO_CACHE = CacheLookup(None, "chat", None, read=False, write=False)


class ResponseCache:
    def __init__(
        self,
        settings: CacheSettings,
        *,
        store: CacheStore,
        metrics: GatewayMetrics,
        redis: SharedRedis | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._redis = redis
        self.metrics = metrics

    def lookup(
        self,
        principal: Principal,
        kind: Kind,
        request: BaseModel,
        *,
        max_tokens: int | None = None,
        cache_control: str | None = None,
        whole: bool = False,
    ) -> CacheLookup:
        """How `request` may use the cache. `max_tokens` is the effective limit, so that spelling it
        `max_tokens`, `max_completion_tokens` or leaving it to the default gives one key. `whole`: fields
        this server does not know are part of the key too (they reach an upstream that may)."""
        if not self._settings.enabled or not self._cacheable(request):
            return NO_CACHE
        directives = {d.strip().lower() for d in (cache_control or "").split(",")}
        namespace = "shared" if self._settings.shared else f"{principal.kind}:{principal.id}"
        try:
            key = cache_key(namespace, kind, _canonical_request(request, max_tokens, whole=whole))
        except TypeError:  # a value JSON cannot hold exactly (an integer past 64 bits): not cacheable
            return NO_CACHE
        return CacheLookup(
            self, kind, key, read="no-cache" not in directives, write="no-store" not in directives
        )

    def _cacheable(self, request: BaseModel) -> bool:
        if not isinstance(request, SamplingFields) or not self._settings.deterministic_only:
            return True
        return request.temperature == 0 or request.seed is not None

    async def read(self, key: str) -> bytes | None:
        if self._redis is None:
            return await self._store.get(key)
        try:
            return await self._redis.run("cache", lambda: self._store.get(key))
        except RedisUnavailableError:
            return None

    async def write(self, key: str, value: bytes) -> None:
        ttl = self._settings.ttl_seconds
        if self._redis is None:
            await self._store.set(key, value, ttl)
            return
        try:
            await self._redis.run("cache", lambda: self._store.set(key, value, ttl))
        except RedisUnavailableError:
            logger.debug("cache write skipped: Redis is unavailable")

    async def close(self) -> None:
        await self._store.close()


def _canonical_request(request: BaseModel, max_tokens: int | None, *, whole: bool) -> Mapping[str, Any]:
    """The request's output-changing fields; unknown fields only if `whole`."""
    ignored = _NOT_OUTPUT | _MAX_TOKENS_ALIASES | (set() if whole else set(request.model_extra or {}))
    payload = request.model_dump(exclude=ignored, exclude_none=True)
    if max_tokens is not None:
        payload["max_tokens"] = max_tokens
    return payload


def _parse(model: type[Model], raw: bytes | None) -> Model | None:
    if raw is None:
        return None
    try:
        return model.model_validate_json(raw)
    except ValidationError:
        logger.warning("a cached %s did not parse (written by another version?); treated as a miss", model)
        return None
