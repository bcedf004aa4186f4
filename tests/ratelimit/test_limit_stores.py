from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from llmapi.ratelimit.checks import Check, Concurrency, Quota, Rate
from llmapi.ratelimit.memory_store import MemoryLimitStore
from llmapi.ratelimit.redis_store import RedisLimitStore
from tests.real_services import own_redis, require_redis

Store = MemoryLimitStore | RedisLimitStore
Advance = Callable[[float], Awaitable[None]]
# Redis runs on real time: allow for the milliseconds that pass between calls, and for rounding up to ms.
SLACK_S = 0.25


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def prefix() -> str:
    return f"llmapi-test:{{{uuid.uuid4().hex}}}:"


async def delete_keys(client: aioredis.Redis, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, clock: FakeClock, prefix: str) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield MemoryLimitStore(clock=clock)
        return
    client = aioredis.Redis.from_url(require_redis())
    try:
        yield RedisLimitStore(client)
    finally:
        await delete_keys(client, prefix)
        await client.aclose()


@pytest.fixture
def advance(store: Store, clock: FakeClock) -> Advance:
    """Let time pass: the fake clock of the memory store jumps, Redis's clock is waited for."""
    if isinstance(store, RedisLimitStore):
        return asyncio.sleep

    async def jump(seconds: float) -> None:
        clock.now += seconds

    return jump


def rate(prefix: str, name: str, limit: int, period_s: float = 60.0, cost: int = 1) -> Rate:
    return Rate(f"{prefix}rate:{name}", limit, period_s, cost)


@pytest.mark.parametrize("limit", [5, 18])  # 60 s / 18 is no exact float: 18 intervals overshoot 60 s
async def test_a_fresh_rate_admits_a_burst_of_exactly_its_limit_then_refuses(
    store: Store, prefix: str, limit: int
) -> None:
    check = Check(rates=(rate(prefix, "requests", limit=limit),))
    decisions = [await store.acquire(check) for _ in range(limit)]
    assert all(decision.allowed for decision in decisions)
    assert [decision.rates[0].remaining for decision in decisions] == list(reversed(range(limit)))
    assert decisions[-1].rates[0].reset_s == pytest.approx(60, abs=SLACK_S)

    denied = await store.acquire(check)
    assert not denied.allowed
    assert denied.denied_by == ("rate", 0)
    assert 60 / limit - SLACK_S < denied.retry_after_s <= 60 / limit + 0.001  # one unit's interval
    assert denied.rates[0].limit == limit
    assert denied.rates[0].remaining == 0


async def test_token_costs_charge_units_and_report_what_remains(store: Store, prefix: str) -> None:
    tokens = rate(prefix, "tokens", limit=1000, period_s=3600)  # a token every 3.6 s
    first = await store.acquire(Check(rates=(tokens,)))  # cost 1 here, then larger costs below
    assert first.allowed
    assert first.rates[0].remaining == 999

    big = await store.acquire(Check(rates=(Rate(tokens.key, 1000, 3600, 700),)))
    assert big.allowed
    assert big.rates[0].remaining == 299
    assert big.rates[0].reset_s == pytest.approx(701 * 3.6, abs=SLACK_S)

    too_big = await store.acquire(Check(rates=(Rate(tokens.key, 1000, 3600, 300),)))
    assert not too_big.allowed
    assert too_big.rates[0].remaining == 299  # the refused charge left the rate as it was
    assert 3.6 - SLACK_S < too_big.retry_after_s <= 3.6 + 0.001  # one token short

    never = await store.acquire(Check(rates=(Rate(f"{prefix}rate:other", 1000, 3600, 1001),)))
    assert not never.allowed
    assert never.retry_after_s == 3600  # more than the limit can ever pass
    assert never.rates[0].remaining == 1000


async def test_a_check_refused_by_one_limit_charges_none(store: Store, prefix: str) -> None:
    wide, narrow = rate(prefix, "wide", limit=10), rate(prefix, "narrow", limit=1)
    quota = Quota(f"{prefix}quota:day", limit=100, cost=1, ttl_s=3600)
    both = Check(rates=(wide, narrow), quotas=(quota,))
    assert (await store.acquire(both)).allowed

    denied = await store.acquire(both)
    assert not denied.allowed
    assert denied.denied_by == ("rate", 1)
    assert [state.remaining for state in denied.rates] == [9, 0]

    alone = await store.acquire(Check(rates=(wide,), quotas=(quota,)))
    assert alone.allowed
    assert alone.rates[0].remaining == 8  # 10 - 2: the refused check took nothing from `wide`...
    full_quota = Quota(quota.key, limit=100, cost=98, ttl_s=3600)
    assert (await store.acquire(Check(quotas=(full_quota,)))).allowed  # ...nor from the quota (2 used)


@pytest.mark.parametrize(("limit", "period_s"), [(0, 60.0), (10, 0.0)])
async def test_a_rate_that_could_admit_nothing_is_refused_as_a_mistake(
    store: Store, prefix: str, limit: int, period_s: float
) -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        await store.acquire(Check(rates=(rate(prefix, "broken", limit=limit, period_s=period_s),)))


async def test_retry_after_is_the_longest_wait_among_the_refusing_limits(store: Store, prefix: str) -> None:
    quota = Quota(f"{prefix}quota:day", limit=1, cost=1, ttl_s=3600)
    check = Check(rates=(rate(prefix, "minute", limit=1),), quotas=(quota,))
    assert (await store.acquire(check)).allowed

    denied = await store.acquire(check)
    assert denied.denied_by == ("rate", 0)  # the first refusing limit in check order
    assert 3600 - 1 - SLACK_S < denied.retry_after_s <= 3600  # but the quota's wait


async def test_a_quota_refuses_past_its_limit_and_release_settles_it_to_the_units_used(
    store: Store, prefix: str
) -> None:
    quota = Quota(f"{prefix}quota:month", limit=100, cost=60, ttl_s=3600)
    check = Check(quotas=(quota,))
    assert (await store.acquire(check)).allowed

    denied = await store.acquire(check)
    assert not denied.allowed
    assert denied.denied_by == ("quota", 0)
    assert denied.rates == ()
    assert 3600 - 1 - SLACK_S < denied.retry_after_s <= 3600

    await store.release(check, {quota.key: 10})  # 60 reserved, 10 used: 50 back
    assert (await store.acquire(Check(quotas=(Quota(quota.key, 100, 90, 3600),)))).allowed
    assert not (await store.acquire(Check(quotas=(Quota(quota.key, 100, 1, 3600),)))).allowed
    await store.release(check, {quota.key: 0})
    await store.release(check, {quota.key: 0})  # refunds past zero leave zero, not a credit
    assert (await store.acquire(Check(quotas=(Quota(quota.key, 100, 100, 3600),)))).allowed
    assert not (await store.acquire(Check(quotas=(Quota(quota.key, 100, 1, 3600),)))).allowed

    extra = Quota(f"{prefix}quota:extra", limit=100, cost=10, ttl_s=3600)
    assert (await store.acquire(Check(quotas=(extra,)))).allowed
    await store.release(Check(quotas=(extra,)), {extra.key: 95})  # used more than reserved: charged
    assert not (await store.acquire(Check(quotas=(Quota(extra.key, 100, 6, 3600),)))).allowed
    assert (await store.acquire(Check(quotas=(Quota(extra.key, 100, 5, 3600),)))).allowed


async def test_release_refunds_unused_rate_units_and_never_below_empty(store: Store, prefix: str) -> None:
    tokens = rate(prefix, "tokens", limit=100, cost=80)
    check = Check(rates=(tokens,))
    assert (await store.acquire(check)).allowed
    await store.release(check, {tokens.key: 20})
    refunded = await store.acquire(check)
    assert refunded.allowed  # 20 + 80 of 100
    assert refunded.rates[0].remaining == 0

    await store.release(check, {tokens.key: 0})
    await store.release(check, {tokens.key: 0})  # a refund past empty leaves a full rate, not a credit
    full = await store.acquire(Check(rates=(Rate(tokens.key, 100, 60.0, 100),)))
    assert full.allowed
    assert full.rates[0].remaining == 0

    untouched = Check(rates=(rate(prefix, "untouched", limit=100, cost=80),))
    assert (await store.acquire(untouched)).allowed
    await store.release(untouched, {})  # not in `used`: kept as reserved
    assert not (await store.acquire(untouched)).allowed


async def test_concurrency_holds_leases_until_released(store: Store, prefix: str) -> None:
    def slot(lease: str) -> Check:
        return Check(concurrency=Concurrency(f"{prefix}concurrency", limit=2, lease=lease, lease_ttl_s=60))

    assert (await store.acquire(slot("a"))).allowed
    assert (await store.acquire(slot("b"))).allowed
    denied = await store.acquire(slot("c"))
    assert not denied.allowed
    assert denied.denied_by == ("concurrency", 0)
    assert denied.retry_after_s == 1.0

    await store.release(slot("a"), {})
    assert (await store.acquire(slot("c"))).allowed
    await store.release(slot("a"), {})  # twice: harmless, frees nothing more
    assert not (await store.acquire(slot("d"))).allowed


async def test_a_lease_takes_as_many_slots_as_its_cost(store: Store, prefix: str) -> None:
    def slots(lease: str, cost: int) -> Check:
        concurrency = Concurrency(f"{prefix}concurrency", limit=4, lease=lease, lease_ttl_s=60, cost=cost)
        return Check(concurrency=concurrency)

    assert (await store.acquire(slots("three", 3))).allowed
    denied = await store.acquire(slots("two", 2))
    assert not denied.allowed
    assert denied.denied_by == ("concurrency", 0)
    assert (await store.acquire(slots("one", 1))).allowed
    assert not (await store.acquire(slots("another", 1))).allowed

    await store.release(slots("three", 3), {})  # frees all three
    assert (await store.acquire(slots("two", 2))).allowed
    assert (await store.acquire(slots("another", 1))).allowed
    assert not (await store.acquire(slots("more", 1))).allowed


async def test_a_lease_costing_more_than_the_limit_is_refused_even_when_none_is_held(
    store: Store, prefix: str
) -> None:
    concurrency = Concurrency(f"{prefix}concurrency", limit=4, lease="big", lease_ttl_s=60, cost=5)

    denied = await store.acquire(Check(concurrency=concurrency))

    assert not denied.allowed
    assert denied.denied_by == ("concurrency", 0)


async def test_an_unreleased_lease_lapses_with_all_its_slots(
    store: Store, prefix: str, advance: Advance
) -> None:
    def slots(lease: str, cost: int) -> Check:
        concurrency = Concurrency(f"{prefix}concurrency", limit=3, lease=lease, lease_ttl_s=0.2, cost=cost)
        return Check(concurrency=concurrency)

    assert (await store.acquire(slots("dead-instance", 3))).allowed
    assert not (await store.acquire(slots("next", 1))).allowed
    await advance(0.3)
    assert (await store.acquire(slots("next", 3))).allowed


async def test_an_unreleased_lease_lapses_after_its_ttl(store: Store, prefix: str, advance: Advance) -> None:
    def slot(lease: str) -> Check:
        return Check(concurrency=Concurrency(f"{prefix}concurrency", limit=1, lease=lease, lease_ttl_s=0.2))

    assert (await store.acquire(slot("dead-instance"))).allowed
    assert not (await store.acquire(slot("next"))).allowed
    await advance(0.3)
    assert (await store.acquire(slot("next"))).allowed


async def test_a_rate_replenishes_continuously(store: Store, prefix: str, advance: Advance) -> None:
    check = Check(rates=(rate(prefix, "second", limit=2, period_s=1.0),))
    assert (await store.acquire(check)).allowed
    assert (await store.acquire(check)).allowed
    denied = await store.acquire(check)
    assert not denied.allowed
    assert 0.5 - SLACK_S < denied.retry_after_s <= 0.5 + 0.001

    await advance(denied.retry_after_s + 0.1)
    assert (await store.acquire(check)).allowed  # one unit came back...
    assert not (await store.acquire(check)).allowed  # ...only one

    await advance(1.1)
    refilled = await store.acquire(check)
    assert refilled.allowed
    assert refilled.rates[0].remaining == 1


async def test_memory_store_forgets_limits_once_they_expire(clock: FakeClock, prefix: str) -> None:
    store = MemoryLimitStore(clock=clock)
    check = Check(
        rates=(rate(prefix, "requests", limit=10),),
        quotas=(Quota(f"{prefix}quota", limit=10, cost=1, ttl_s=120),),
        concurrency=Concurrency(f"{prefix}concurrency", limit=1, lease="lease", lease_ttl_s=30),
    )
    assert (await store.acquire(check)).allowed
    assert len(store) == 3

    clock.now += 121
    assert (await store.acquire(Check())).allowed
    assert len(store) == 0


async def test_redis_keys_expire_when_idle(prefix: str) -> None:
    client = aioredis.Redis.from_url(require_redis())
    try:
        store = RedisLimitStore(client)
        check = Check(
            rates=(rate(prefix, "requests", limit=10),),
            quotas=(Quota(f"{prefix}quota", limit=10, cost=1, ttl_s=120),),
            concurrency=Concurrency(f"{prefix}concurrency", limit=1, lease="lease", lease_ttl_s=30),
        )
        assert (await store.acquire(check)).allowed
        assert 0 < await client.pttl(check.rates[0].key) <= 6_000 + 1_000  # one unit of 60 s / 10, + margin
        charged_at = await client.hget(check.rates[0].key, "t")  # server microseconds, all digits kept
        seconds, microseconds = await client.time()
        assert charged_at is not None
        assert 0 <= seconds * 1_000_000 + microseconds - int(charged_at) < 5_000_000
        assert 119_000 < await client.pttl(check.quotas[0].key) <= 120_000
        assert 29_000 < await client.pttl(f"{prefix}concurrency") <= 31_000
    finally:
        await delete_keys(client, prefix)
        await client.aclose()


async def test_two_instances_on_one_redis_admit_exactly_the_limit(prefix: str) -> None:
    url = require_redis()
    clients = [aioredis.Redis.from_url(url), aioredis.Redis.from_url(url)]
    try:
        stores = [RedisLimitStore(client) for client in clients]
        check = Check(rates=(rate(prefix, "shared", limit=10),))
        decisions = await asyncio.gather(*(stores[i % 2].acquire(check) for i in range(30)))
        assert sum(decision.allowed for decision in decisions) == 10
        assert sorted(decision.rates[0].remaining for decision in decisions if decision.allowed) == list(
            range(10)
        )
    finally:
        await delete_keys(clients[0], prefix)
        for client in clients:
            await client.aclose()


async def test_the_checks_of_one_loop_turn_share_one_connection_and_round_trip(prefix: str) -> None:
    client = aioredis.Redis.from_url(require_redis(), client_name=f"{prefix}batch")
    try:
        store = RedisLimitStore(client)
        check = Check(rates=(rate(prefix, "batched", limit=25),))
        decisions = await asyncio.gather(*(store.acquire(check) for _ in range(40)))
        connections = [c for c in await client.client_list() if c["name"] == f"{prefix}batch"]

        assert sum(decision.allowed for decision in decisions) == 25
        assert len(connections) == 1  # one call at a time each would have opened up to 40
    finally:
        await delete_keys(client, prefix)
        await client.aclose()


async def test_the_redis_store_loads_its_scripts_where_the_server_lacks_them(
    tmp_path: Path, prefix: str
) -> None:
    with own_redis(tmp_path) as server:  # a fresh server knows no script; flushing the shared one is rude
        client = aioredis.Redis.from_url(server.url)
        try:
            store = RedisLimitStore(client)
            check = Check(
                rates=(rate(prefix, "requests", limit=2),),
                concurrency=Concurrency(f"{prefix}concurrency", limit=1, lease="lease", lease_ttl_s=30),
            )
            assert (await store.acquire(check)).allowed
            await client.script_flush()
            await store.release(check, {})
            await client.script_flush()

            decision = await store.acquire(check)

            assert decision.allowed and decision.rates[0].remaining == 0
        finally:
            await client.aclose()
