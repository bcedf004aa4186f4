"""Limits shared by every instance on one Redis: each acquire and each release is one Lua script call."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from importlib.resources import files
from typing import Any, Literal

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from llmapi.ratelimit.checks import Check, Concurrency, Decision, Quota, Rate, RateState
from llmapi.redis_batch import RedisBatch

_KINDS: dict[int, Literal["rate", "quota", "concurrency"]] = {1: "rate", 2: "quota", 3: "concurrency"}
_Arg = str | int | float


class RedisLimitStore:
    """Exact across instances: a check is decided and charged atomically inside Redis, on the server's clock,
    so instances whose clocks disagree still agree on every limit. The scripts (acquire.lua, release.lua) are
    sent by EVALSHA, the calls of one loop turn in one round trip (`RedisBatch`), and loaded again when the
    server answers NOSCRIPT.

    The caller owns `client` and closes it; `close()` leaves it open.
    """

    def __init__(self, client: aioredis.Redis) -> None:
        batch = RedisBatch(client)
        self._acquire = _Script(client, batch, "acquire.lua")
        self._release = _Script(client, batch, "release.lua")

    async def acquire(self, check: Check) -> Decision:
        args: list[_Arg] = [len(check.rates), len(check.quotas), int(check.concurrency is not None)]
        for rate in check.rates:
            if rate.limit < 1 or rate.period_s <= 0:  # the script would divide by zero and admit everything
                raise ValueError(
                    f"rate {rate.key}: limit ({rate.limit}) must be >= 1 and period_s ({rate.period_s}) > 0"
                )
            args += (rate.limit, rate.period_s * 1e6, rate.cost)
        for quota in check.quotas:
            args += (quota.limit, quota.cost, quota.ttl_s)
        if check.concurrency is not None:
            concurrency = check.concurrency
            args += (concurrency.limit, concurrency.lease, concurrency.lease_ttl_s * 1e6, concurrency.cost)
        reply = await self._acquire(_keys(check.rates, check.quotas, check.concurrency), args)
        allowed, kind, index, retry_ms, *rate_values = (int(value) for value in reply)
        states = tuple(
            RateState(rate.limit, remaining, reset_ms / 1000)
            for rate, remaining, reset_ms in zip(
                check.rates, rate_values[::2], rate_values[1::2], strict=True
            )
        )
        if allowed:
            return Decision(True, states)
        return Decision(False, states, (_KINDS[kind], index), retry_ms / 1000)

    async def release(self, check: Check, used: Mapping[str, int]) -> None:
        rates = [rate for rate in check.rates if rate.key in used]
        quotas = [quota for quota in check.quotas if quota.key in used]
        if not rates and not quotas and check.concurrency is None:
            return
        args: list[_Arg] = [len(rates), len(quotas), int(check.concurrency is not None)]
        for rate in rates:
            args += (rate.limit, rate.period_s * 1e6, used[rate.key] - rate.cost)
        for quota in quotas:
            args += (used[quota.key] - quota.cost, quota.ttl_s)
        if check.concurrency is not None:
            args += (check.concurrency.lease, check.concurrency.cost)
        await self._release(_keys(rates, quotas, check.concurrency), args)

    async def close(self) -> None:
        """The caller owns the client and closes it."""


class _Script:
    """A Lua script called by EVALSHA (in the batch of its loop turn) and loaded again when the server
    answers NOSCRIPT (after a restart or a SCRIPT FLUSH)."""

    def __init__(self, client: aioredis.Redis, batch: RedisBatch, name: str) -> None:
        self._client = client
        self._batch = batch
        self._source = files("llmapi.ratelimit").joinpath(name).read_text(encoding="utf-8")
        self._sha = hashlib.sha1(self._source.encode()).hexdigest()

    async def __call__(self, keys: list[str], args: list[_Arg]) -> Any:
        try:
            return await self._batch.command("EVALSHA", self._sha, len(keys), *keys, *args)
        except NoScriptError:
            await self._client.script_load(self._source)
            return await self._client.evalsha(self._sha, len(keys), *keys, *args)


def _keys(rates: Iterable[Rate], quotas: Iterable[Quota], concurrency: Concurrency | None) -> list[str]:
    keys = [rate.key for rate in rates] + [quota.key for quota in quotas]
    return keys if concurrency is None else [*keys, concurrency.key]
