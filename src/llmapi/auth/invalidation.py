"""Tell every instance to forget a cached credential: a Redis pub/sub channel carrying ids ("*" = all),
and `SIGNING_KEYS` (reload the signing keys now: a rotation).

The subscriber reconnects with capped exponential backoff and never raises into the app. Messages sent while
it was disconnected are lost, so after every (re)subscription it delivers "*": drop everything cached.
While it is not subscribed, `listening` is False and the authenticator stops caching.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

logger = logging.getLogger(__name__)

EVERYTHING = "*"
SIGNING_KEYS = "signing-keys"  # not an id: reload the signing keys (a rotation)
DEFAULT_CHANNEL = "llmapi:auth:invalidate"


class InvalidationError(Exception):
    """The invalidation could not be sent to the other instances."""


class Invalidation(Protocol):
    @property
    def listening(self) -> bool: ...
    async def start(self, on_message: Callable[[str], None]) -> None: ...
    async def publish(self, key_id: str) -> None: ...
    async def close(self) -> None: ...


class RedisInvalidation:
    def __init__(
        self,
        redis_url: str,
        channel: str = DEFAULT_CHANNEL,
        *,
        client_name: str = "llmapi-auth-invalidation",
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        poll_seconds: float = 1.0,
    ) -> None:
        options: dict[str, Any] = {
            "client_name": client_name,
            "socket_connect_timeout": 2.0,
            "socket_keepalive": True,
            "health_check_interval": 10,
        }
        self._publisher = aioredis.Redis.from_url(redis_url, socket_timeout=2.0, **options)
        # No silent reconnects in the subscriber: the loop below must notice every gap.
        self._subscriber = aioredis.Redis.from_url(redis_url, retry=Retry(NoBackoff(), 0), **options)
        self._channel = channel
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._poll_seconds = poll_seconds
        self._listening = False
        self._task: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        return self._listening

    async def start(self, on_message: Callable[[str], None]) -> None:
        """Subscribe in a background task; returns at once (a Redis outage only delays the subscription)."""
        if self._task is None:
            self._task = asyncio.create_task(self._listen(on_message), name="auth-invalidation-listener")

    async def publish(self, key_id: str) -> None:
        try:
            await self._publisher.publish(self._channel, key_id)
        except (aioredis.RedisError, OSError) as exc:
            raise InvalidationError(f"publishing to the invalidation channel failed: {exc}") from exc

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._subscriber.aclose()
        await self._publisher.aclose()

    async def _listen(self, on_message: Callable[[str], None]) -> None:
        delay = self._backoff_initial
        while True:
            pubsub = self._subscriber.pubsub()
            try:
                await self._subscribe(pubsub)
                delay = self._backoff_initial
                _deliver(on_message, EVERYTHING)
                while True:
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=self._poll_seconds
                    )
                    if message is not None and message.get("type") == "message":
                        _deliver(on_message, _text(message.get("data")))
            except (aioredis.RedisError, OSError) as exc:
                logger.warning("auth invalidation channel lost (%s); reconnecting in %.1f s", exc, delay)
            finally:
                self._listening = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self._backoff_max)

    async def _subscribe(self, pubsub: aioredis.client.PubSub) -> None:
        await pubsub.subscribe(self._channel)
        while True:  # until Redis confirms, so that nothing published after `listening` is missed
            message = await pubsub.get_message(timeout=self._poll_seconds)
            if message is not None and message.get("type") == "subscribe":
                self._listening = True
                return


def _deliver(on_message: Callable[[str], None], key_id: str) -> None:
    try:
        on_message(key_id)
    except Exception:
        logger.exception("the auth invalidation handler failed on a message")


def _text(data: Any) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
