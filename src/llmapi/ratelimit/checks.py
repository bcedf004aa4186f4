"""What a limit store is asked (a Check: several limits, all or nothing) and what it answers (a Decision).

Keys are built by the caller and carry a Redis hash tag (`{principal}`) so one check's keys share a slot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class Rate:
    """GCRA: `limit` units per `period_s`, replenished continuously, bursting up to `limit`."""

    key: str
    limit: int
    period_s: float
    cost: int


@dataclass(frozen=True, slots=True)
class Quota:
    """A calendar window (a day, a month) holding `limit` units; its counter expires `ttl_s` from now."""

    key: str
    limit: int
    cost: int
    ttl_s: int


@dataclass(frozen=True, slots=True)
class Concurrency:
    """At most `limit` slots held at once; a lease holds `cost` of them (a request, one per sequence it runs)
    until it is released, or until it lapses after `lease_ttl_s` (its instance died). A lease costing more
    than `limit` is never admitted."""

    key: str
    limit: int
    lease: str
    lease_ttl_s: float
    cost: int = 1


@dataclass(frozen=True, slots=True)
class Check:
    rates: tuple[Rate, ...] = ()
    quotas: tuple[Quota, ...] = ()
    concurrency: Concurrency | None = None


@dataclass(frozen=True, slots=True)
class RateState:
    """A rate after the decision: what is left and how long until it is full again."""

    limit: int
    remaining: int
    reset_s: float


DeniedBy = tuple[Literal["rate", "quota", "concurrency"], int]


@dataclass(frozen=True, slots=True)
class Decision:
    """Allowed: every limit was charged. Denied: none was; `denied_by` names the first that refused
    (kind, index in the check), `retry_after_s` when it would pass. `rates` follows `check.rates`."""

    allowed: bool
    rates: tuple[RateState, ...]
    denied_by: DeniedBy | None = None
    retry_after_s: float = 0.0


class LimitStore(Protocol):
    async def acquire(self, check: Check) -> Decision:
        """Charge every limit of `check` at once, or none of them."""
        ...

    async def release(self, check: Check, used: Mapping[str, int]) -> None:
        """Settle an allowed check: each rate or quota whose key is in `used` is corrected from its
        reserved `cost` to the units really used (a refund, or an extra charge); the lease is released."""
        ...

    async def close(self) -> None: ...
