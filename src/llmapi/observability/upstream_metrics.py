"""Prometheus metrics of remote models' upstream replicas, labelled by model and replica origin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge

Outcome = Literal["ok", "error_status", "connect_error", "timeout", "dropped"]
_LABELS = ["model", "replica"]


class UpstreamMetrics:
    """The metric families, registered on one app's registry; every pool of the app shares them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.in_flight = Gauge(
            "llmapi_upstream_requests_in_flight",
            "Requests sent to the replica whose answer is not over yet.",
            _LABELS,
            registry=registry,
        )
        self.healthy = Gauge(
            "llmapi_upstream_healthy",
            "1 while the replica's circuit breaker is closed; 0 while it is open or probing.",
            _LABELS,
            registry=registry,
        )
        self.requests = Counter(
            "llmapi_upstream_requests",
            "Requests sent to the replica, by outcome: ok (an answer below 500), error_status (500 or "
            "more), connect_error, timeout (before the answer's headers), dropped (the connection broke "
            "before them).",
            [*_LABELS, "outcome"],
            registry=registry,
        )
        self.retries = Counter(
            "llmapi_upstream_retries",
            "Requests sent to the replica again after a failure (there or on another replica).",
            _LABELS,
            registry=registry,
        )

    def replica(
        self, *, model: str, replica: str, in_flight: Callable[[], int], healthy: Callable[[], bool]
    ) -> ReplicaMetrics:
        """Watches one replica, read at scrape time; `replica` is its origin, never a path or credentials."""
        self.in_flight.labels(model, replica).set_function(in_flight)
        self.healthy.labels(model, replica).set_function(lambda: float(healthy()))
        return ReplicaMetrics(self, model, replica)


class ReplicaMetrics:
    """The counters bound to one replica (label lookups done once, not per request)."""

    def __init__(self, families: UpstreamMetrics, model: str, replica: str) -> None:
        self._outcomes = {
            outcome: families.requests.labels(model, replica, outcome) for outcome in get_args(Outcome)
        }
        self._retries = families.retries.labels(model, replica)

    def sent(self, outcome: Outcome) -> None:
        self._outcomes[outcome].inc()

    def retried(self) -> None:
        self._retries.inc()
