"""The time a request spends waiting on an upstream, kept apart so that what the gateway itself adds to a
request (its overhead) can be measured: the request's time to its answer's start, less this."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(slots=True)
class UpstreamWait:
    seconds: float = 0.0


_current: ContextVar[UpstreamWait | None] = ContextVar("llmapi_upstream_wait", default=None)


def track_upstream_wait() -> UpstreamWait:
    """Starts counting for the request running in this context (and the tasks it starts)."""
    wait = UpstreamWait()
    _current.set(wait)
    return wait


@contextmanager
def waiting_on_upstream() -> Iterator[None]:
    """Counts the block's time as the current request's wait on its upstream."""
    wait, start = _current.get(), time.perf_counter()
    try:
        yield
    finally:
        if wait is not None:
            wait.seconds += time.perf_counter() - start
