"""Admission: may this caller make this request now?

Every limit that applies (requests and tokens per minute, per model, concurrency, daily and monthly token
budgets) is checked and charged in one atomic call to the limit store: Redis when configured, so the
limits hold across instances, else this process's memory. Tokens are reserved up front (an estimate of the
prompt plus the most the request may generate) and settled to the real count when the response is over.
A per-instance guard sheds load before the engine's queue fills.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from llmapi.auth.principal import Principal
from llmapi.config import LimitSettings
from llmapi.errors import QuotaExceededError, RateLimitError, ServerOverloadedError, ServiceUnavailableError
from llmapi.observability.gateway_metrics import GatewayMetrics
from llmapi.ratelimit.checks import Check, Concurrency, Decision, LimitStore, Quota, Rate, RateState
from llmapi.shared_redis import RedisUnavailableError, SharedRedis
from llmapi.types import RateLimits

logger = logging.getLogger(__name__)

MINUTE_S = 60.0
Unit = Literal["requests", "tokens"]


@dataclass(frozen=True, slots=True)
class _RateLabel:
    unit: Unit
    model: str | None


@dataclass(frozen=True, slots=True)
class _Plan:
    check: Check
    rate_labels: tuple[_RateLabel, ...]
    quota_labels: tuple[str, ...]


class Admission:
    """One admitted request. `settle` once, when its response is over."""

    def __init__(
        self,
        headers: dict[str, str],
        release: Callable[[int | None], Awaitable[None]] | None = None,
        *,
        prompt_tokens: int = 0,
    ) -> None:
        self.headers = headers
        self._release = release
        self._prompt_tokens = prompt_tokens

    async def settle(self, tokens_used: int | None, *, failed: bool = False) -> None:
        """Correct the reservation to `tokens_used`; None keeps it as charged (nothing is known of the real
        count). A request that `failed` after admission is charged at least the estimate of its prompts:
        they were read and tokenized (and maybe prefilled) whether or not an answer came back, and a failure
        that cost nothing would be work anyone could ask for without limit."""
        release, self._release = self._release, None
        if release is None:
            return
        if failed and tokens_used is not None:
            tokens_used = max(tokens_used, self._prompt_tokens)
        await release(tokens_used)


class Gatekeeper:
    def __init__(
        self,
        settings: LimitSettings,
        *,
        local: LimitStore,
        shared: LimitStore | None = None,
        redis: SharedRedis | None = None,
        metrics: GatewayMetrics,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._local = local
        self._shared = shared
        self._redis = redis
        self._metrics = metrics
        self._admitted = metrics.limit_decisions.labels("allowed", "all")
        self._admitted_unlimited = metrics.limit_decisions.labels("allowed", "none")
        self._now = now
        self.inflight = 0

    async def admit(
        self,
        principal: Principal,
        *,
        model: str | None,
        tokens: int,
        prompt_tokens: int = 0,
        sequences: int = 1,
    ) -> Admission:
        """Charge the caller's limits for a request that may use up to `tokens` and runs `sequences` at once
        (each holds a concurrency slot), or raise a 429 / 503. `prompt_tokens` (the estimate of its prompts)
        is the least it is charged if it fails."""
        if self.inflight >= self._settings.max_inflight_requests:
            self._refused("overload")
            raise ServerOverloadedError(
                f"This instance is at capacity ({self.inflight} requests in flight); retry in a moment."
            )
        plan = self._plan(principal, model, tokens, sequences)
        if plan is None:
            self.inflight += 1
            self._admitted_unlimited.inc()
            return Admission({}, self._release_slot, prompt_tokens=prompt_tokens)
        store, decision = await self._acquire(plan.check)
        headers = _rate_headers(plan, decision)
        if not decision.allowed:
            raise self._refusal(plan, decision, headers)
        self.inflight += 1
        self._admitted.inc()

        async def release(tokens_used: int | None) -> None:
            self.inflight -= 1
            used = {} if tokens_used is None else _token_keys(plan, tokens_used)
            try:
                if store is self._local:
                    await store.release(plan.check, used)
                elif self._redis is not None:
                    await self._redis.run("ratelimit", lambda: store.release(plan.check, used))
            except RedisUnavailableError:
                logger.debug("settling limits skipped: Redis is unavailable; the lease lapses on its own")

        return Admission(headers, release, prompt_tokens=prompt_tokens)

    async def _release_slot(self, _: int | None) -> None:
        self.inflight -= 1

    async def _acquire(self, check: Check) -> tuple[LimitStore, Decision]:
        shared = self._shared
        if shared is None or self._redis is None:
            return self._local, await self._local.acquire(check)
        try:
            return shared, await self._redis.run("ratelimit", lambda: shared.acquire(check))
        except RedisUnavailableError:
            if self._settings.on_redis_failure == "closed":
                self._refused("unavailable")
                raise ServiceUnavailableError(
                    "Rate limits cannot be checked because Redis is unavailable; retry in a few seconds.",
                    retry_after=2,
                    code="limits_unavailable",
                ) from None
            self._metrics.limit_fallbacks.inc()
            return self._local, await self._local.acquire(check)

    def _plan(self, principal: Principal, model: str | None, tokens: int, sequences: int) -> _Plan | None:
        if principal.kind == "anonymous":
            return None
        limits = _effective(self._settings.for_role(principal.role), principal)
        tag = "{" + principal.id + "}"
        rates: list[Rate] = []
        labels: list[_RateLabel] = []

        def rate(unit: Unit, limit: int | None, key: str, cost: int, for_model: str | None = None) -> None:
            if limit is not None:
                rates.append(Rate(key, limit, MINUTE_S, cost))
                labels.append(_RateLabel(unit, for_model))

        rate("requests", limits.requests_per_minute, f"llmapi:rl:{tag}:rpm", 1)
        rate("tokens", limits.tokens_per_minute, f"llmapi:rl:{tag}:tpm", tokens)
        model_limits = self._settings.models.get(model) if model else None
        if model and model_limits:
            rate("requests", model_limits.requests_per_minute, f"llmapi:rl:{tag}:m:{model}:rpm", 1, model)
            rate("tokens", model_limits.tokens_per_minute, f"llmapi:rl:{tag}:m:{model}:tpm", tokens, model)
        quotas, quota_labels = self._quotas(tag, limits, tokens)
        concurrency = None
        if limits.max_concurrent is not None:
            concurrency = Concurrency(
                f"llmapi:conc:{tag}",
                limits.max_concurrent,
                secrets.token_hex(16),
                self._settings.lease_ttl_seconds,
                cost=sequences,
            )
        if not rates and not quotas and concurrency is None:
            return None
        return _Plan(Check(tuple(rates), quotas, concurrency), tuple(labels), quota_labels)

    def _quotas(self, tag: str, limits: RateLimits, tokens: int) -> tuple[tuple[Quota, ...], tuple[str, ...]]:
        now = self._now()
        quotas: list[Quota] = []
        labels: list[str] = []
        if limits.tokens_per_day is not None:
            ends = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
            key = f"llmapi:quota:{tag}:d:{now:%Y%m%d}"
            quotas.append(Quota(key, limits.tokens_per_day, tokens, _seconds_until(ends, now)))
            labels.append("daily")
        if limits.tokens_per_month is not None:
            ends = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
            key = f"llmapi:quota:{tag}:mo:{now:%Y%m}"
            quotas.append(Quota(key, limits.tokens_per_month, tokens, _seconds_until(ends, now)))
            labels.append("monthly")
        return tuple(quotas), tuple(labels)

    def _refusal(self, plan: _Plan, decision: Decision, headers: dict[str, str]) -> RateLimitError:
        kind, index = decision.denied_by or ("rate", 0)
        retry = decision.retry_after_s
        if kind == "quota":
            self._refused("budget")
            quota = plan.check.quotas[index]
            return QuotaExceededError(
                f"The {plan.quota_labels[index]} token budget of {quota.limit} tokens is spent "
                f"(this request reserves up to {quota.cost}); it renews in {_duration(retry)}. "
                "Ask an administrator for a larger budget.",
                error_type="insufficient_quota",
                retry_after_s=retry,
                headers=headers,
            )
        if kind == "concurrency" and plan.check.concurrency is not None:
            self._refused("concurrency")
            return _too_many_sequences(plan.check.concurrency, retry, headers)
        label, limited = plan.rate_labels[index], plan.check.rates[index]
        self._refused(label.unit)
        where = f" for model '{label.model}'" if label.model else ""
        if limited.cost > limited.limit:
            message = (
                f"This request may use up to {limited.cost} tokens, more than the limit of {limited.limit} "
                f"tokens per minute{where}; lower max_tokens or shorten the input."
            )
        else:
            message = (
                f"Rate limit reached on {label.unit} per minute{where}: limit {limited.limit}, "
                f"requested {limited.cost}. Try again in {_duration(retry)}."
            )
        return RateLimitError(message, error_type=label.unit, retry_after_s=retry, headers=headers)

    def _refused(self, limit: str) -> None:
        self._metrics.limit_decisions.labels("refused", limit).inc()


def _too_many_sequences(slots: Concurrency, retry: float, headers: dict[str, str]) -> RateLimitError:
    """Concurrency counts sequences: a request with n choices of p prompts runs n x p of them at once."""
    if slots.cost > slots.limit:
        message = (
            f"This request runs {slots.cost} sequences at once (n choices of each prompt), more than the "
            f"limit of {slots.limit} concurrent sequences; lower n or send fewer prompts."
        )
    else:
        message = (
            f"Too many concurrent sequences: the limit is {slots.limit} sequences at a time (a request "
            f"holds one per choice of each prompt; this one needs {slots.cost}). "
            "Retry when one of your requests has finished."
        )
    return RateLimitError(message, error_type="requests", retry_after_s=retry, headers=headers)


def _effective(role_limits: RateLimits, principal: Principal) -> RateLimits:
    """The principal's own limits where set, else its role's."""
    own = principal.rate_limits.model_dump(exclude_none=True)
    return role_limits.model_copy(update=own) if own else role_limits


def _token_keys(plan: _Plan, tokens_used: int) -> dict[str, int]:
    """The limits of a plan that count tokens, settled to `tokens_used`."""
    rates = zip(plan.rate_labels, plan.check.rates, strict=True)
    used = {rate.key: tokens_used for label, rate in rates if label.unit == "tokens"}
    used.update((quota.key, tokens_used) for quota in plan.check.quotas)
    return used


def _rate_headers(plan: _Plan, decision: Decision) -> dict[str, str]:
    """OpenAI's `x-ratelimit-*` headers, from the caller's own (not per-model) limits."""
    headers: dict[str, str] = {}
    for label, state in zip(plan.rate_labels, decision.rates, strict=True):
        if label.model is None:
            headers.update(_headers_for(label.unit, state))
    return headers


def _headers_for(unit: Unit, state: RateState) -> dict[str, str]:
    return {
        f"x-ratelimit-limit-{unit}": str(state.limit),
        f"x-ratelimit-remaining-{unit}": str(max(0, state.remaining)),
        f"x-ratelimit-reset-{unit}": _duration(state.reset_s),
    }


def _duration(seconds: float) -> str:
    """As OpenAI writes durations: `20ms`, `1.5s`, `6m0s`."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    if minutes:
        return f"{int(minutes)}m{rest:.0f}s"
    return f"{rest:.3g}s"


def _seconds_until(end: datetime, now: datetime) -> int:
    return max(1, int((end - now).total_seconds()) + 1)
