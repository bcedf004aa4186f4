"""Replicas of one remote model: each request goes to the least busy healthy one and moves on when it fails.

A replica fails a request by refusing the connection, timing out or breaking the connection before the
answer's headers, or answering 5xx; `breaker_failures` failures in a row take it out for `breaker_reset_s`,
then one trial request probes it back in. Retries never run a request more than twice: a request the
replica may have run (a 5xx, a timeout, a connection dropped before the answer) is sent once more, to a
healthy replica not tried yet; a request that could not connect, so nothing ran, moves on to every other
healthy replica, then is retried with backoff `max_retries` times on those that refused it. Once the
response is handed over nothing is retried. When no replica is healthy, a request is sent to the one taken
out longest ago rather than refused untried: with one replica that is the behaviour of a plain client.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import aiohttp
from yarl import URL

from llmapi.circuit_breaker import CircuitBreaker
from llmapi.observability.upstream_metrics import Outcome, ReplicaMetrics, UpstreamMetrics
from llmapi.observability.upstream_wait import waiting_on_upstream

logger = logging.getLogger(__name__)

_MAX_BACKOFF_S = 2.0


class Replica:
    """One upstream serving the model, and what the pool knows of it."""

    def __init__(self, base_url: URL, breaker: CircuitBreaker, position: int) -> None:
        self.base_url = base_url
        self.origin = str(base_url.origin())
        self.breaker = breaker
        self.in_flight = 0
        self.last_failure = -math.inf
        self.position = position
        self._endpoints: dict[str, URL] = {}

    @property
    def healthy(self) -> bool:
        return self.breaker.state == "closed"

    def endpoint(self, path: str) -> URL:
        url = self._endpoints.get(path)
        if url is None:
            url = self._endpoints[path] = URL(f"{self.base_url}/{path}")
        return url


@dataclass(frozen=True, slots=True)
class _Call:
    session: aiohttp.ClientSession
    path: str
    body: bytes
    limits: aiohttp.ClientTimeout
    headers: Mapping[str, str]


class UpstreamPool:
    def __init__(
        self,
        *,
        model: str,
        base_urls: Sequence[URL],
        max_retries: int,
        breaker_failures: int = 3,
        breaker_reset_s: float = 5.0,
        metrics: UpstreamMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not base_urls:
            raise ValueError(f"model '{model}': an upstream pool needs at least one base URL")
        self._model = model
        self._max_retries = max_retries
        self._clock = clock
        self._replicas = tuple(
            Replica(
                url,
                CircuitBreaker(
                    failure_threshold=breaker_failures, reset_timeout_s=breaker_reset_s, clock=clock
                ),
                position,
            )
            for position, url in enumerate(base_urls)
        )
        self._metrics = {} if metrics is None else {r: _watch(metrics, model, r) for r in self._replicas}
        self._next = 0

    def replicas(self) -> Sequence[Replica]:
        return self._replicas

    def request(
        self,
        session: aiohttp.ClientSession,
        path: str,
        body: bytes,
        *,
        timeout: aiohttp.ClientTimeout,
        headers: Mapping[str, str],
    ) -> AbstractAsyncContextManager[aiohttp.ClientResponse]:
        """POSTs `body` to `<replica>/<path>`; yields the answer, whatever its status once retries are spent.

        Raises the aiohttp exception of the last attempt when no answer came. The replica counts the request
        in flight until the block exits; the response is released then (which drops an unread connection).
        """
        return self._exchange(_Call(session, path, body, timeout, headers))

    @asynccontextmanager
    async def _exchange(self, call: _Call) -> AsyncIterator[aiohttp.ClientResponse]:
        with waiting_on_upstream():
            replica, response = await self._send(call)
        try:
            yield response
        finally:
            response.release()
            replica.in_flight -= 1

    async def _send(self, call: _Call) -> tuple[Replica, aiohttp.ClientResponse]:
        tried: list[Replica] = []
        refused: list[Replica] = []
        may_resend = True
        backoffs = 0
        replica, trial = self._choose_or_fallback(self._replicas)
        self._next = replica.position + 1
        while True:
            if tried:
                self._retried(replica)
            tried.append(replica)
            untried = [r for r in self._replicas if r not in tried]
            try:
                response = await self._attempt(replica, trial, call)
            except aiohttp.ClientSSLError:
                raise  # the gateway's TLS settings to fix: every replica would refuse the same
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                following = self._choose(untried)
                if following is None and isinstance(exc, aiohttp.ClientConnectorError):
                    if replica not in refused:
                        refused.append(replica)
                    if backoffs < self._max_retries:
                        await asyncio.sleep(min(0.1 * 2**backoffs, _MAX_BACKOFF_S))
                        backoffs += 1
                        following = self._choose_or_fallback(refused)
                if following is None:
                    raise
                self._log_retry(replica, type(exc).__name__)
            except (TimeoutError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                following = self._choose(untried) if may_resend else None
                if following is None:
                    raise
                may_resend = False
                self._log_retry(replica, "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__)
            else:
                if response.status < 500:
                    return replica, response
                following = self._choose(untried) if may_resend else None
                if following is None:
                    return replica, response
                may_resend = False
                response.close()
                replica.in_flight -= 1
                self._log_retry(replica, f"HTTP {response.status}")
            replica, trial = following

    def _choose(self, candidates: Sequence[Replica]) -> tuple[Replica, bool] | None:
        """The candidate with the fewest requests in flight whose breaker allows a call, and whether this
        call is its breaker's trial. Ties go round: to the first after the one the last request went to."""
        count = len(self._replicas)
        order = sorted(candidates, key=lambda r: (r.in_flight, (r.position - self._next) % count))
        for replica in order:
            was_open = replica.breaker.state == "open"
            if replica.breaker.allow():
                return replica, was_open
        return None

    def _choose_or_fallback(self, candidates: Sequence[Replica]) -> tuple[Replica, bool]:
        """As `_choose`; when every breaker refuses, the candidate that failed longest ago."""
        return self._choose(candidates) or (min(candidates, key=lambda r: r.last_failure), False)

    async def _attempt(
        self,
        replica: Replica,
        trial: bool,
        call: _Call,
    ) -> aiohttp.ClientResponse:
        """One POST; leaves the request counted in flight only when it returns a response."""
        replica.in_flight += 1
        try:
            response = await call.session.post(
                replica.endpoint(call.path), data=call.body, headers=call.headers, timeout=call.limits
            )
        except BaseException as exc:
            replica.in_flight -= 1
            outcome = _failure(exc)
            if outcome is not None:
                self._failed(replica, outcome)
            elif trial:
                replica.breaker.failed()  # frees the trial, or the replica would never be probed again
            raise
        if response.status >= 500:
            self._failed(replica, "error_status")
        else:
            replica.breaker.succeeded()
            self._sent(replica, "ok")
        return response

    def _failed(self, replica: Replica, outcome: Outcome) -> None:
        replica.breaker.failed()
        replica.last_failure = self._clock()
        self._sent(replica, outcome)

    def _sent(self, replica: Replica, outcome: Outcome) -> None:
        metrics = self._metrics.get(replica)
        if metrics is not None:
            metrics.sent(outcome)

    def _retried(self, replica: Replica) -> None:
        metrics = self._metrics.get(replica)
        if metrics is not None:
            metrics.retried()

    def _log_retry(self, replica: Replica, reason: str) -> None:
        logger.debug("model %s: upstream %s failed (%s), retrying", self._model, replica.origin, reason)


def _watch(metrics: UpstreamMetrics, model: str, replica: Replica) -> ReplicaMetrics:
    return metrics.replica(
        model=model,
        replica=replica.origin,
        in_flight=lambda: replica.in_flight,
        healthy=lambda: replica.healthy,
    )


def _failure(exc: BaseException) -> Outcome | None:
    """What an exception raised before the answer's headers says of the replica (None: nothing)."""
    if isinstance(exc, aiohttp.ClientSSLError):
        return None  # the gateway's TLS settings, not the replica's health
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect_error"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientError):
        return "dropped"
    return None
