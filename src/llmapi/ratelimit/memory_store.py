"""Limits held in this process: exact for one instance, with the same semantics as the Redis store."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import NamedTuple

from llmapi.ratelimit.checks import Check, Decision, DeniedBy, Quota, Rate, RateState

# A rate admits a charge that overshoots its period by up to this fraction of one unit's interval, so that
# float error in sums of intervals never refuses the last unit of a burst (the Redis script uses the same).
TOLERANCE = 1e-3
CONCURRENCY_RETRY_S = 1.0
SWEEP_EVERY_S = 60.0


class _Count(NamedTuple):
    value: int
    expires_at: float


class _Lease(NamedTuple):
    slots: int
    expires_at: float


class MemoryLimitStore:
    """GCRA rates, expiring quota counters and leased concurrency slots (a lease holds its cost) in dicts.

    Nothing awaits between checking and charging, so one event loop needs no locks. Expired entries count
    as absent and are swept out every `SWEEP_EVERY_S` seconds of `clock`, so memory holds only live limits.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tats: dict[str, float] = {}
        self._counts: dict[str, _Count] = {}
        self._leases: dict[str, dict[str, _Lease]] = {}
        self._next_sweep = clock() + SWEEP_EVERY_S

    def __len__(self) -> int:
        """Entries held: rate keys, quota keys and concurrency keys (expired ones until the next sweep)."""
        return len(self._tats) + len(self._counts) + len(self._leases)

    async def acquire(self, check: Check) -> Decision:
        now = self._clock()
        self._sweep(now)
        debts = [self._debt(rate.key, now) for rate in check.rates]
        refusals: list[tuple[DeniedBy, float]] = []
        for index, (rate, debt) in enumerate(zip(check.rates, debts, strict=True)):
            wait = rate_wait(rate, debt)
            if wait is not None:
                refusals.append((("rate", index), wait))
        for index, quota in enumerate(check.quotas):
            count = self._count(quota.key, now)
            if (count.value if count else 0) + quota.cost > quota.limit:
                refusals.append((("quota", index), count.expires_at - now if count else float(quota.ttl_s)))
        slots = check.concurrency
        if slots is not None and self._slots_held(slots.key, now) + slots.cost > slots.limit:
            refusals.append((("concurrency", 0), CONCURRENCY_RETRY_S))
        if refusals:
            states = tuple(rate_state(rate, debt) for rate, debt in zip(check.rates, debts, strict=True))
            return Decision(False, states, refusals[0][0], max(wait for _, wait in refusals))

        charged = [debt + rate.cost * interval(rate) for rate, debt in zip(check.rates, debts, strict=True)]
        for rate, debt in zip(check.rates, charged, strict=True):
            self._tats[rate.key] = now + debt
        for quota in check.quotas:
            self._add(quota, quota.cost, now)
        if slots is not None:
            self._live_leases(slots.key, now)[slots.lease] = _Lease(slots.cost, now + slots.lease_ttl_s)
        return Decision(
            True, tuple(rate_state(rate, debt) for rate, debt in zip(check.rates, charged, strict=True))
        )

    async def release(self, check: Check, used: Mapping[str, int]) -> None:
        now = self._clock()
        for rate in check.rates:
            if rate.key in used:
                debt = self._debt(rate.key, now) + (used[rate.key] - rate.cost) * interval(rate)
                if debt > 0:
                    self._tats[rate.key] = now + debt
                else:
                    self._tats.pop(rate.key, None)
        for quota in check.quotas:
            if quota.key in used:
                self._add(quota, used[quota.key] - quota.cost, now)
        if check.concurrency is not None:
            self._leases.get(check.concurrency.key, {}).pop(check.concurrency.lease, None)

    async def close(self) -> None:
        """Nothing to release: the limits live as long as this object."""

    def _debt(self, key: str, now: float) -> float:
        """How far the key's TAT lies ahead of `now` (0 for an absent key)."""
        return max(0.0, self._tats.get(key, now) - now)

    def _count(self, key: str, now: float) -> _Count | None:
        count = self._counts.get(key)
        return count if count is not None and count.expires_at > now else None

    def _add(self, quota: Quota, delta: int, now: float) -> None:
        """INCRBY on a counter that expires `ttl_s` after its first charge and never drops below 0."""
        count = self._count(quota.key, now)
        if count is None:
            if delta <= 0:
                return
            count = _Count(0, now + quota.ttl_s)
        self._counts[quota.key] = _Count(max(0, count.value + delta), count.expires_at)

    def _live_leases(self, key: str, now: float) -> dict[str, _Lease]:
        leases = self._leases.setdefault(key, {})
        for lease in [lease for lease, held in leases.items() if held.expires_at <= now]:
            del leases[lease]
        return leases

    def _slots_held(self, key: str, now: float) -> int:
        return sum(held.slots for held in self._live_leases(key, now).values())

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_EVERY_S
        self._tats = {key: tat for key, tat in self._tats.items() if tat > now}
        self._counts = {key: count for key, count in self._counts.items() if count.expires_at > now}
        for key in list(self._leases):
            if not self._live_leases(key, now):
                del self._leases[key]


def interval(rate: Rate) -> float:
    """Seconds one unit of `rate` takes to replenish."""
    if rate.limit < 1 or rate.period_s <= 0:
        raise ValueError(
            f"rate {rate.key}: limit ({rate.limit}) must be >= 1 and period_s ({rate.period_s}) > 0"
        )
    return rate.period_s / rate.limit


def rate_wait(rate: Rate, debt: float) -> float | None:
    """Seconds until `rate`, owing `debt` seconds, admits its cost; None when it admits it now."""
    excess = debt + rate.cost * interval(rate) - rate.period_s
    if excess <= TOLERANCE * interval(rate):
        return None
    return rate.period_s if rate.cost > rate.limit else excess


def rate_state(rate: Rate, debt: float) -> RateState:
    remaining = math.floor((rate.period_s - debt) / interval(rate) + TOLERANCE)
    return RateState(rate.limit, max(0, remaining), debt)
