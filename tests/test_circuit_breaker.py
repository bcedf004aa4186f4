from __future__ import annotations

from llmapi.circuit_breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_it_opens_after_failures_in_a_row_and_refuses_calls() -> None:
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout_s=2.0, clock=Clock())
    breaker.failed()
    breaker.failed()
    assert breaker.allow() and breaker.state == "closed"

    breaker.failed()

    assert breaker.state == "open"
    assert not breaker.allow()


def test_a_success_resets_the_count() -> None:
    breaker = CircuitBreaker(failure_threshold=2, clock=Clock())
    breaker.failed()
    breaker.succeeded()
    breaker.failed()

    assert breaker.state == "closed"


def test_after_the_timeout_one_trial_call_closes_or_reopens_it() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=2.0, clock=clock)
    breaker.failed()
    clock.now = 2.5

    assert breaker.allow()
    assert breaker.state == "half_open"
    assert not breaker.allow(), "only one trial call at a time"
    breaker.failed()
    assert breaker.state == "open" and not breaker.allow()

    clock.now = 5.0
    assert breaker.allow()
    breaker.succeeded()
    assert breaker.state == "closed" and breaker.allow()
