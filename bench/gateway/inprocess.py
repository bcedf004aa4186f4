"""The gateway's own work per request, in process: one limit check and one cache lookup, p50 and p99 in µs.

Built as `create_app` builds them: the Gatekeeper over MemoryLimitStore or RedisLimitStore (through
SharedRedis), the ResponseCache over MemoryCacheStore or RedisCacheStore, GatewayMetrics on a fresh registry.
Every key written to Redis carries a fresh principal id and is deleted at the end.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

from llmapi.auth.principal import Principal
from llmapi.auth.scopes import ROLE_SCOPES
from llmapi.cache.memory_store import MemoryCacheStore
from llmapi.cache.redis_store import RedisCacheStore
from llmapi.config import CacheSettings, LimitSettings
from llmapi.observability.gateway_metrics import GatewayMetrics
from llmapi.observability.metrics import new_metrics_registry
from llmapi.protocol.chat import ChatCompletionRequest
from llmapi.ratelimit.memory_store import MemoryLimitStore
from llmapi.ratelimit.redis_store import RedisLimitStore
from llmapi.services.admission import Gatekeeper
from llmapi.services.response_cache import ResponseCache
from llmapi.services.text_jobs import GeneratedTexts, SequenceResult
from llmapi.shared_redis import SharedRedis
from llmapi.types import RateLimits

WARMUP = 200
MAX_TOKENS = 16
MODEL = "gpt2-124m-random"
REQUEST = {
    "model": MODEL,
    "messages": [
        {"role": "system", "content": "You are a concise assistant. Answer in one or two sentences."},
        {
            "role": "user",
            "content": "Our nightly job copies a 40 GB Postgres table to S3 as Parquet and takes three "
            "hours. What are the first two things you would look at to make it faster?",
        },
    ],
    "temperature": 0,
    "max_tokens": MAX_TOKENS,
}
# About 50 tokens of assistant text.
ANSWER = (
    "First, check whether the export reads the table with one sequential scan or with many small, "
    "offset-paginated queries; then look at the Parquet writer's row-group size and compression, since "
    "tiny row groups and single-threaded compression often dominate."
)

Samples = dict[str, tuple[float, float]]  # label -> (p50 µs, p99 µs)


def principal() -> Principal:
    return Principal(
        id=f"bench-{uuid.uuid4().hex}",
        kind="api_key",
        name="bench",
        role="developer",
        scopes=ROLE_SCOPES["developer"],
        rate_limits=RateLimits(
            requests_per_minute=10_000_000, tokens_per_minute=1_000_000_000, max_concurrent=1_000_000
        ),
    )


def answer() -> GeneratedTexts:
    """What the server caches of a chat completion: its sequences' results."""
    return GeneratedTexts(
        prompt_tokens=54, completion_tokens=50, results=[SequenceResult(ANSWER, "length", 54, 50)]
    )


def quantiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49], cuts[98]


async def timed(call: Callable[[], Awaitable[object]], calls: int) -> list[float]:
    """µs per call, over `calls` sequential calls after a warm-up."""
    for _ in range(WARMUP):
        await call()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


async def limits(calls: int, redis: SharedRedis | None) -> Samples:
    """`Gatekeeper.admit` then `Admission.settle`, timed apart (an admission is always settled)."""
    gatekeeper = Gatekeeper(
        LimitSettings.model_validate({}),
        local=MemoryLimitStore(),
        shared=RedisLimitStore(redis.client) if redis else None,
        redis=redis,
        metrics=GatewayMetrics(new_metrics_registry()),
    )
    caller = principal()
    tokens = ChatCompletionRequest.model_validate(REQUEST).token_estimate(MAX_TOKENS)
    admit: list[float] = []
    settle: list[float] = []
    try:
        for _ in range(WARMUP + calls):
            start = time.perf_counter()
            admission = await gatekeeper.admit(caller, model=MODEL, tokens=tokens)
            admitted = time.perf_counter()
            await admission.settle(MAX_TOKENS)
            admit.append((admitted - start) * 1e6)
            settle.append((time.perf_counter() - admitted) * 1e6)
    finally:
        if redis is not None:  # the limit keys all carry the principal's id
            await _forget(redis, [key async for key in redis.client.scan_iter(match=f"*{caller.id}*")])
    admit, settle = admit[WARMUP:], settle[WARMUP:]
    return {
        "admit": quantiles(admit),
        "settle": quantiles(settle),
        "admit + settle": quantiles([a + s for a, s in zip(admit, settle, strict=True)]),
    }


class _RememberingRedisStore(RedisCacheStore):
    """RedisCacheStore that notes the keys it writes, so that they can be deleted (reads are untouched)."""

    def __init__(self, redis: SharedRedis, max_entry_bytes: int) -> None:
        super().__init__(redis.client, max_entry_bytes)
        self.keys: list[str] = []

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        self.keys.append(key)
        await super().set(key, value, ttl_s)


async def cache(calls: int, redis: SharedRedis | None) -> Samples:
    """`ResponseCache.lookup` (canonical request and key) and `CacheLookup.get` on a hit and on a miss."""
    settings = CacheSettings()
    remembering = _RememberingRedisStore(redis, settings.max_entry_bytes) if redis else None
    store = remembering or MemoryCacheStore(settings.max_bytes, settings.max_entry_bytes)
    metrics = GatewayMetrics(new_metrics_registry())
    response_cache = ResponseCache(settings, store=store, redis=redis, metrics=metrics)
    caller, stranger = principal(), principal()
    request = ChatCompletionRequest.model_validate(REQUEST)

    async def get(who: Principal, expect: bool) -> None:
        found = await response_cache.lookup(who, "chat", request, max_tokens=MAX_TOKENS).get(GeneratedTexts)
        if (found is not None) != expect:
            raise RuntimeError(f"expected a {'hit' if expect else 'miss'}, got the opposite")

    async def key_only() -> None:
        response_cache.lookup(caller, "chat", request, max_tokens=MAX_TOKENS)

    try:
        await response_cache.lookup(caller, "chat", request, max_tokens=MAX_TOKENS).put(answer())
        return {
            "lookup (key only)": quantiles(await timed(key_only, calls)),
            "lookup + get, hit": quantiles(await timed(lambda: get(caller, True), calls)),
            "lookup + get, miss": quantiles(await timed(lambda: get(stranger, False), calls)),
        }
    finally:
        if redis is not None and remembering is not None:
            await _forget(redis, remembering.keys)


async def _forget(redis: SharedRedis, keys: list[str]) -> None:
    if keys:
        await redis.client.delete(*keys)
