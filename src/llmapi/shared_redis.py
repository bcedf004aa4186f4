"""The Redis that instances share for limits and the cache, behind one circuit breaker.

When Redis fails, callers get `RedisUnavailableError` at once instead of waiting on a timeout request after
request; the breaker tries Redis again every couple of seconds and closes when it answers.

Each call is bounded as a whole by `asyncio.timeout`, not by redis-py's `socket_timeout`, which wraps every
write in `asyncio.wait_for` (a Task per command) and every read in a timeout of its own. A call cut short
leaves its connection closed by redis-py, so no late reply is read as the answer to another command.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from llmapi.circuit_breaker import CircuitBreaker

T = TypeVar("T")

CALL_TIMEOUT_S = 0.5


class RedisUnavailableError(Exception):
    """Redis failed, or the breaker is open after recent failures."""


class SharedRedis:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        breaker: CircuitBreaker | None = None,
        on_error: Callable[[str], None] = lambda component: None,
        timeout_s: float = CALL_TIMEOUT_S,
    ) -> None:
        self.client = client
        self.breaker = breaker or CircuitBreaker()
        self._on_error = on_error
        self._timeout_s = timeout_s

    @classmethod
    def from_url(cls, url: str, *, on_error: Callable[[str], None] = lambda component: None) -> SharedRedis:
        client = aioredis.Redis.from_url(
            url,
            socket_timeout=None,  # redis-py's default is 5 s; `run` bounds each call instead
            socket_connect_timeout=CALL_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(client, on_error=on_error)

    @property
    def degraded(self) -> bool:
        return self.breaker.state != "closed"

    async def run(self, component: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run `call` (a Redis round trip for `component`) within the timeout, else RedisUnavailableError."""
        if not self.breaker.allow():
            raise RedisUnavailableError("Redis is unavailable (circuit open)")
        try:
            async with asyncio.timeout(self._timeout_s):
                result = await call()
        except (aioredis.RedisError, OSError, TimeoutError) as exc:
            self.breaker.failed()
            self._on_error(component)
            raise RedisUnavailableError(f"Redis failed: {type(exc).__name__}") from exc
        self.breaker.succeeded()
        return result

    async def answers(self) -> bool:
        """A ping through the breaker: whether Redis can be used now."""
        try:
            await self.run("health", self.client.ping)
        except RedisUnavailableError:
            return False
        return True

    async def close(self) -> None:
        await self.client.aclose()
