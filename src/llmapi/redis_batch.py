"""Redis commands issued while one turn of the event loop runs, sent together as one pipeline: one
connection from the pool, one write, one read, instead of a round trip each. Under load many requests reach
the same step in the same turn, so their limit checks (or cache reads) share a round trip; alone, a command
costs what it did. Each command is still on its own (no transaction): a Lua script stays atomic in Redis.
A caller that gave up (its timeout) is skipped when the replies come."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

_Command = tuple[tuple[Any, ...], "asyncio.Future[Any]"]


class RedisBatch:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._waiting: list[_Command] = []
        self._sending: set[asyncio.Task[None]] = set()

    def command(self, *args: Any) -> asyncio.Future[Any]:
        """The reply to `args` (`"GET", key`...), or the error Redis answered with, once its batch is back."""
        loop = asyncio.get_running_loop()
        if not self._waiting:
            loop.call_soon(self._send)
        reply: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((args, reply))
        return reply

    def _send(self) -> None:
        commands, self._waiting = self._waiting, []
        task = asyncio.ensure_future(self._execute(commands))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _execute(self, commands: list[_Command]) -> None:
        pipeline = self._client.pipeline(transaction=False)
        for args, _ in commands:
            pipeline.execute_command(*args)
        try:
            replies = await pipeline.execute(raise_on_error=False)
        except Exception as exc:
            replies = [exc] * len(commands)
        for (_, reply), value in zip(commands, replies, strict=True):
            if reply.done():
                continue
            if isinstance(value, Exception):
                reply.set_exception(value)
            else:
                reply.set_result(value)
