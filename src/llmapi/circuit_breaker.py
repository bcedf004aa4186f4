"""A circuit breaker: stop calling a dependency that keeps failing, try it again now and then."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Closed: calls go through. After `failure_threshold` failures in a row it opens and refuses calls for
    `reset_timeout_s`; then it lets one trial call through (half-open): success closes it, failure reopens it.
    """

    def __init__(
        self,
        *,
        failure_threshold: int = 3,
        reset_timeout_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = failure_threshold
        self._reset_timeout_s = reset_timeout_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        return "half_open" if self._trial_running else "open"

    def allow(self) -> bool:
        """Whether a call may be made now; in the open state, one trial call after the timeout."""
        if self._opened_at is None:
            return True
        if self._trial_running or self._clock() - self._opened_at < self._reset_timeout_s:
            return False
        self._trial_running = True
        return True

    def succeeded(self) -> None:
        self._failures, self._opened_at, self._trial_running = 0, None, False

    def failed(self) -> None:
        self._failures += 1
        self._trial_running = False
        if self._opened_at is not None or self._failures >= self._threshold:
            self._opened_at = self._clock()
