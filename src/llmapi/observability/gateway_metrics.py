"""Prometheus metrics of the front door: limit decisions, the response cache, and the shared Redis."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.limit_decisions = Counter(
            "llmapi_ratelimit_decisions",
            "Admission decisions: allowed, or refused and by which limit "
            "(requests, tokens, concurrency, budget, overload, unavailable).",
            ["decision", "limit"],
            registry=registry,
        )
        self.limit_fallbacks = Counter(
            "llmapi_ratelimit_fallback",
            "Limit checks made in this instance's memory because Redis was unavailable.",
            registry=registry,
        )
        self.cache_lookups = Counter(
            "llmapi_cache_lookups",
            "Response cache lookups by endpoint kind and result (hit, miss, bypass).",
            ["kind", "result"],
            registry=registry,
        )
        self.redis_errors = Counter(
            "llmapi_redis_errors",
            "Failed Redis calls, by the component that made them.",
            ["component"],
            registry=registry,
        )
        self.overhead = Histogram(
            "llmapi_gateway_overhead_seconds",
            "Time the gateway itself took to an answer's start, less the time it waited on an upstream.",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=registry,
        )
        self._redis_degraded = Gauge(
            "llmapi_redis_degraded",
            "1 while the shared Redis is unavailable and its circuit breaker is open.",
            registry=registry,
        )

    def watch_redis(self, degraded: Callable[[], bool]) -> None:
        self._redis_degraded.set_function(lambda: float(degraded()))

    def redis_error(self, component: str) -> None:
        self.redis_errors.labels(component).inc()
