"""The admission service over the in-process store: which limits apply to whom, and how refusals read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from llmapi.auth.principal import Principal
from llmapi.auth.scopes import ROLE_SCOPES
from llmapi.config import LimitSettings
from llmapi.errors import QuotaExceededError, RateLimitError, ServerOverloadedError
from llmapi.observability.gateway_metrics import GatewayMetrics
from llmapi.ratelimit.memory_store import MemoryLimitStore
from llmapi.services.admission import Gatekeeper
from llmapi.types import RateLimits


def principal(role: str = "developer", **limits: int) -> Principal:
    return Principal(
        id=f"key-{role}-{sorted(limits.items())}",
        kind="api_key",
        name="test",
        role=role,  # type: ignore[arg-type]
        scopes=ROLE_SCOPES[role],  # type: ignore[index]
        rate_limits=RateLimits(**limits),
    )


def gatekeeper(now: datetime | None = None, **settings: object) -> Gatekeeper:
    return Gatekeeper(
        LimitSettings.model_validate(settings),
        local=MemoryLimitStore(),
        metrics=GatewayMetrics(CollectorRegistry()),
        now=lambda: now or datetime.now(UTC),
    )


async def test_a_keys_own_limit_overrides_its_roles_default() -> None:
    gate = gatekeeper(developer={"requests_per_minute": 100})

    admitted = await gate.admit(principal(requests_per_minute=3), model=None, tokens=1)

    assert admitted.headers["x-ratelimit-limit-requests"] == "3"
    assert admitted.headers["x-ratelimit-limit-tokens"] == "200000"  # the role's default stays


async def test_setting_one_role_limit_keeps_the_roles_other_defaults() -> None:
    settings = LimitSettings.model_validate({"developer": {"requests_per_minute": 5}})

    assert settings.developer.requests_per_minute == 5
    assert settings.developer.max_concurrent == 32
    assert settings.admin.requests_per_minute is None


async def test_admins_are_unlimited_by_default_and_send_no_limit_headers() -> None:
    gate = gatekeeper()

    admitted = await gate.admit(principal("admin"), model=None, tokens=10**9)

    assert admitted.headers == {}


async def test_a_refusal_charges_nothing_and_says_when_to_retry() -> None:
    gate = gatekeeper()
    caller = principal(requests_per_minute=1)
    await gate.admit(caller, model=None, tokens=1)

    with pytest.raises(RateLimitError) as refused:
        await gate.admit(caller, model=None, tokens=1)

    assert refused.value.status_code == 429
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 60
    assert int(refused.value.headers["retry-after-ms"]) > 0


async def test_budgets_renew_at_the_end_of_the_utc_day_and_month() -> None:
    new_years_eve = datetime(2026, 12, 31, 23, 59, 0, tzinfo=UTC)
    gate = gatekeeper(now=new_years_eve)
    caller = principal(tokens_per_day=10, tokens_per_month=1000)
    await gate.admit(caller, model=None, tokens=10)

    with pytest.raises(QuotaExceededError) as refused:
        await gate.admit(caller, model=None, tokens=1)

    assert refused.value.code == "insufficient_quota"
    assert "daily" in refused.value.message
    assert int(refused.value.headers["Retry-After"]) <= 61


async def test_settling_refunds_what_was_reserved_but_not_used() -> None:
    gate = gatekeeper()
    caller = principal(tokens_per_minute=100)
    first = await gate.admit(caller, model=None, tokens=90)
    await first.settle(10)

    second = await gate.admit(caller, model=None, tokens=80)

    assert int(second.headers["x-ratelimit-remaining-tokens"]) >= 10


async def test_the_instance_guard_sheds_load_and_frees_slots_on_settle() -> None:
    gate = gatekeeper(max_inflight_requests=1)
    first = await gate.admit(principal("admin"), model=None, tokens=1)

    with pytest.raises(ServerOverloadedError):
        await gate.admit(principal("admin"), model=None, tokens=1)
    await first.settle(1)

    await gate.admit(principal("admin"), model=None, tokens=1)


@pytest.mark.parametrize(("failed", "charged"), [(False, 5), (True, 60)])
async def test_a_failed_request_is_charged_at_least_its_prompt_estimate(failed: bool, charged: int) -> None:
    gate = gatekeeper()
    caller = principal(tokens_per_day=100)
    first = await gate.admit(caller, model=None, tokens=90, prompt_tokens=60)
    await first.settle(5, failed=failed)

    await gate.admit(caller, model=None, tokens=100 - charged)
    with pytest.raises(QuotaExceededError):
        await gate.admit(caller, model=None, tokens=1)


async def test_concurrency_counts_sequences_not_requests() -> None:
    gate = gatekeeper()
    caller = principal(max_concurrent=4)
    three = await gate.admit(caller, model=None, tokens=1, sequences=3)

    with pytest.raises(RateLimitError) as refused:
        await gate.admit(caller, model=None, tokens=1, sequences=2)
    await gate.admit(caller, model=None, tokens=1, sequences=1)
    await three.settle(1)
    await gate.admit(caller, model=None, tokens=1, sequences=3)

    assert "4 sequences at a time" in refused.value.message


async def test_a_request_with_more_sequences_than_the_limit_is_told_to_lower_n() -> None:
    gate = gatekeeper()

    with pytest.raises(RateLimitError) as refused:
        await gate.admit(principal(max_concurrent=4), model=None, tokens=1, sequences=5)

    assert refused.value.status_code == 429
    assert "runs 5 sequences at once" in refused.value.message
    assert "lower n" in refused.value.message
