"""UpstreamPool against real aiohttp servers on loopback: choice, failover, retries, breakers and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry
from yarl import URL

from llmapi.backends.remote.pool import UpstreamPool
from llmapi.observability.upstream_metrics import UpstreamMetrics

MODEL = "m"
TIMEOUT = aiohttp.ClientTimeout(total=5, sock_connect=1)
JSON = {"Content-Type": "application/json"}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Arrivals:
    """Requests that reached any of a test's upstreams."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Condition()

    async def add(self) -> None:
        async with self._changed:
            self.count += 1
            self._changed.notify_all()

    async def reach(self, count: int) -> None:
        async with asyncio.timeout(2), self._changed:
            await self._changed.wait_for(lambda: self.count >= count)


class Upstream:
    """One replica: answers `status` with its name, after `gate` is set when there is one."""

    def __init__(self, name: str, status: int = 200, arrivals: Arrivals | None = None) -> None:
        self.name = name
        self.status = status
        self.arrivals = arrivals or Arrivals()
        self.gate: asyncio.Event | None = None
        self.hang = False
        self.bodies: list[bytes] = []
        self.port = 0
        self._server: TestServer | None = None

    @property
    def url(self) -> URL:
        return URL(f"http://127.0.0.1:{self.port}/v1")

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Upstream:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._answer)
        self._server = TestServer(app, host="127.0.0.1", port=self.port or None)
        await self._server.start_server()
        self.port = self._server.port or 0
        return self

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.close()

    async def _answer(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.read())
        await self.arrivals.add()
        if self.hang:
            await asyncio.sleep(10)
        if self.gate is not None:
            await self.gate.wait()
        return web.Response(status=self.status, text=self.name)


MakeUpstream = Callable[..., Awaitable[Upstream]]


@pytest.fixture
async def make_upstream() -> AsyncIterator[MakeUpstream]:
    started: list[Upstream] = []

    arrivals = Arrivals()

    async def make(name: str, status: int = 200) -> Upstream:
        upstream = await Upstream(name, status, arrivals).start()
        started.append(upstream)
        return upstream

    yield make
    for upstream in started:
        await upstream.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry(auto_describe=False)


def make_pool(registry: CollectorRegistry, *upstreams: Upstream, **options: Any) -> UpstreamPool:
    options = {"max_retries": 0, "metrics": UpstreamMetrics(registry), **options}
    return UpstreamPool(model=MODEL, base_urls=[u.url for u in upstreams], **options)


async def call(pool: UpstreamPool, session: aiohttp.ClientSession, body: bytes = b"{}") -> tuple[int, str]:
    async with pool.request(session, "chat/completions", body, timeout=TIMEOUT, headers=JSON) as response:
        return response.status, await response.text()


def sample(registry: CollectorRegistry, name: str, upstream: Upstream, **labels: str) -> float:
    value = registry.get_sample_value(name, {"model": MODEL, "replica": upstream.origin, **labels})
    return 0.0 if value is None else value


def requests(registry: CollectorRegistry, upstream: Upstream, outcome: str) -> float:
    return sample(registry, "llmapi_upstream_requests_total", upstream, outcome=outcome)


async def test_concurrent_requests_spread_over_the_least_busy_replicas(
    make_upstream: MakeUpstream, session: aiohttp.ClientSession, registry: CollectorRegistry
) -> None:
    a, b = await make_upstream("a"), await make_upstream("b")
    a.gate = b.gate = gate = asyncio.Event()
    pool = make_pool(registry, a, b)

    calls = [asyncio.create_task(call(pool, session)) for _ in range(6)]
    await a.arrivals.reach(6)

    assert (len(a.bodies), len(b.bodies)) == (3, 3)
    assert [r.in_flight for r in pool.replicas()] == [3, 3]
    assert sample(registry, "llmapi_upstream_requests_in_flight", a) == 3
    gate.set()
    assert sorted(await asyncio.gather(*calls)) == [(200, "a")] * 3 + [(200, "b")] * 3
    assert [r.in_flight for r in pool.replicas()] == [0, 0]
    assert sample(registry, "llmapi_upstream_requests_in_flight", b) == 0
    assert requests(registry, a, "ok") == requests(registry, b, "ok") == 3


async def test_sequential_requests_take_turns(
    make_upstream: MakeUpstream, session: aiohttp.ClientSession, registry: CollectorRegistry
) -> None:
    a, b = await make_upstream("a"), await make_upstream("b")
    pool = make_pool(registry, a, b)

    for _ in range(4):
        await call(pool, session)

    assert (len(a.bodies), len(b.bodies)) == (2, 2)


async def test_a_replica_that_refuses_loses_no_request_and_is_probed_back_in(
    make_upstream: MakeUpstream, session: aiohttp.ClientSession, registry: CollectorRegistry
) -> None:
    down, up = await make_upstream("down"), await make_upstream("up")
    await down.stop()
    clock = Clock()
    pool = make_pool(registry, down, up, breaker_failures=2, breaker_reset_s=5.0, clock=clock)
    replica = pool.replicas()[0]

    assert [await call(pool, session) for _ in range(8)] == [(200, "up")] * 8
    assert replica.breaker.state == "open"
    assert requests(registry, down, "connect_error") == 2  # not called once open
    assert requests(registry, up, "ok") == 8
    assert sample(registry, "llmapi_upstream_retries_total", up) == 2
    assert sample(registry, "llmapi_upstream_healthy", down) == 0

    await down.start()
    assert await call(pool, session) == (200, "up")  # still out: the reset time has not passed
    clock.now = 5.0
    answers = [await call(pool, session) for _ in range(2)]

    assert sorted(answers) == [(200, "down"), (200, "up")]
    assert len(down.bodies) == 1
    assert replica.healthy
    assert sample(registry, "llmapi_upstream_healthy", down) == 1


async def test_an_open_replica_gets_one_trial_request_at_a_time(
    make_upstream: MakeUpstream, session: aiohttp.ClientSession, registry: CollectorRegistry
) -> None:
    a, b = await make_upstream("a"), await make_upstream("b")
    clock = Clock()
    pool = make_pool(registry, a, b, breaker_failures=1, breaker_reset_s=5.0, clock=clock)
    pool.replicas()[0].breaker.failed()
    clock.now = 5.0
    a.gate = asyncio.Event()

    calls = [asyncio.create_task(call(pool, session)) for _ in range(4)]
    await a.arrivals.reach(4)
    assert (len(a.bodies), len(b.bodies)) == (1, 3)
    assert pool.replicas()[0].breaker.state == "half_open"
    a.gate.set()

    assert sorted(await asyncio.gather(*calls)) == [(200, "a")] + [(200, "b")] * 3
    assert pool.replicas()[0].healthy


async def test_a_trial_cancelled_before_its_answer_frees_the_trial(
    make_upstream: MakeUpstream, session: aiohttp.ClientSession, registry: CollectorRegistry
) -> None:
    a = await make_upstream("a")
    a.gate = asyncio.Event()
    clock = Clock()
    pool = make_pool(registry, a, breaker_failures=1, breaker_reset_s=5.0, clock=clock)
    replica = pool.replicas()[0]
    replica.breaker.failed()
    clock.now = 5.0

    trial = asyncio.create_task(call(pool, session))
    await a.arrivals.reach(1)
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial

    assert (replica.breaker.state, replica.in_flight) == ("open", 0)
    clock.now = 10.0
    a.gate.set()
    assert await call(pool, session) == (200, "a")
    assert replica.healthy


async def test_a_5xx_is_retried_once_on_another_replica(
    make_upstream: MakeUpstream, session: aiohttp.ClientSession, registry: CollectorRegistry
) -> None:
    failing, ok = await make_upstream("failing", 503), await make_upstream("ok")
    pool = make_pool(registry, failing, ok)

    assert [await call(pool, session) for _ in range(4)] == [(200, "ok")] * 4
    assert len(failing.bodies) == 2
    assert requests(registry, failing, "error_status") == 2
    assert sample(registry, "llmapi_upstream_retries_total", ok) == 2


async def test_a_5xx_is_resent_only_once_and_the_last_answer_is_yielded(
    make_upstream: MakeUpstream, session: aiohttp.ClientSession, registry: CollectorRegistry
) -> None:
    upstreams = [await make_upstream(name, 500) for name in "abc"]
    pool = make_pool(registry, *upstreams)

    status, text = await call(pool, session)

    assert status == 500
    assert sum(len(u.bodies) for u in upstreams) == 2
    assert text in {u.name for u in upstreams if u.bodies}
    assert [r.in_flight for r in pool.replicas()] == [0, 0, 0]


async def test_one_replica_answering_500_hands_the_500_over(
    make_upstream: MakeUpstream, session: aiohttp.ClientSession, registry: CollectorRegistry
) -> None:
    only = await make_upstream("engine crashed", 500)
    pool = make_pool(registry, only, max_retries=3)

    assert await call(pool, session) == (500, "engine crashed")
    assert len(only.bodies) == 1


async def test_a_4xx_is_the_clients_fault_and_not_retried(
    make_upstream: MakeUpstream, session: aiohttp.ClientSession, registry: CollectorRegistry
) -> None:
    a, b = await make_upstream("a", 400), await make_upstream("b", 400)
    pool = make_pool(registry, a, b, breaker_failures=1)

    assert [(await call(pool, session))[0] for _ in range(4)] == [400] * 4
    assert (len(a.bodies), len(b.bodies)) == (2, 2)
    assert all(r.healthy for r in pool.replicas())
    assert requests(registry, a, "ok") == 2
    assert sample(registry, "llmapi_upstream_retries_total", a) == 0


async def test_a_timeout_before_the_answer_is_retried_once(
    make_upstream: MakeUpstream, session: aiohttp.ClientSession, registry: CollectorRegistry
) -> None:
    slow, ok = await make_upstream("slow"), await make_upstream("ok")
    slow.hang = True
    pool = make_pool(registry, slow, ok)
    quick = aiohttp.ClientTimeout(total=5, sock_read=0.1)

    for _ in range(2):
        async with pool.request(session, "chat/completions", b"{}", timeout=quick, headers=JSON) as response:
            assert await response.text() == "ok"
    assert requests(registry, slow, "timeout") == 1

    ok.hang = True
    with pytest.raises(TimeoutError):
        async with pool.request(session, "chat/completions", b"{}", timeout=quick, headers=JSON):
            pass
    assert len(slow.bodies) + len(ok.bodies) == 3 + 2
    assert [r.in_flight for r in pool.replicas()] == [0, 0]


async def test_a_dropped_connection_is_not_sent_to_the_same_replica_again(
    session: aiohttp.ClientSession, registry: CollectorRegistry
) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    dropping = Upstream("dropping")
    dropping.port = server.sockets[0].getsockname()[1]
    try:
        pool = make_pool(registry, dropping, max_retries=3)
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await call(pool, session)
        assert requests(registry, dropping, "dropped") == 1
        assert sample(registry, "llmapi_upstream_retries_total", dropping) == 0
    finally:
        server.close()
        await server.wait_closed()


async def test_in_flight_is_released_when_the_block_raises(
    make_upstream: MakeUpstream, session: aiohttp.ClientSession, registry: CollectorRegistry
) -> None:
    a = await make_upstream("a")
    pool = make_pool(registry, a)

    held: list[int] = []

    async def fail_while_reading() -> None:
        async with pool.request(session, "chat/completions", b"{}", timeout=TIMEOUT, headers=JSON):
            held.append(pool.replicas()[0].in_flight)
            raise RuntimeError("caller failed")

    with pytest.raises(RuntimeError, match="caller failed"):
        await fail_while_reading()
    assert held == [1]

    assert pool.replicas()[0].in_flight == 0
    assert sample(registry, "llmapi_upstream_requests_in_flight", a) == 0


async def test_when_every_replica_is_out_the_one_out_longest_is_tried(
    make_upstream: MakeUpstream, session: aiohttp.ClientSession, registry: CollectorRegistry
) -> None:
    a, b = await make_upstream("a"), await make_upstream("b")
    await a.stop()
    await b.stop()
    clock = Clock()
    pool = make_pool(registry, a, b, breaker_failures=1, breaker_reset_s=60.0, clock=clock)
    with pytest.raises(aiohttp.ClientConnectorError):
        await call(pool, session)
    assert all(r.breaker.state == "open" for r in pool.replicas())

    clock.now = 1.0
    with pytest.raises(aiohttp.ClientConnectorError):
        await call(pool, session)  # tried, not refused untried: a, the first of two out as long
    assert (requests(registry, a, "connect_error"), requests(registry, b, "connect_error")) == (2, 1)

    await b.start()
    clock.now = 2.0
    assert await call(pool, session) == (200, "b")
    assert pool.replicas()[1].healthy
    assert requests(registry, a, "connect_error") == 2


async def test_one_refusing_replica_is_retried_with_backoff_until_it_is_up(
    make_upstream: MakeUpstream, session: aiohttp.ClientSession, registry: CollectorRegistry
) -> None:
    late = await make_upstream("late")
    await late.stop()
    pool = make_pool(registry, late, max_retries=4, breaker_failures=1)

    async def start_soon() -> None:
        await asyncio.sleep(0.05)
        await late.start()

    starting = asyncio.create_task(start_soon())
    assert await call(pool, session) == (200, "late")
    await starting
    assert requests(registry, late, "connect_error") >= 1
    assert pool.replicas()[0].healthy


async def test_several_pools_share_one_registry(
    make_upstream: MakeUpstream, session: aiohttp.ClientSession, registry: CollectorRegistry
) -> None:
    a = await make_upstream("a")
    metrics = UpstreamMetrics(registry)
    pools = [UpstreamPool(model=m, base_urls=[a.url], max_retries=0, metrics=metrics) for m in "xy"]

    for pool in pools:
        await call(pool, session)

    for model in "xy":
        labels = {"model": model, "replica": a.origin, "outcome": "ok"}
        assert registry.get_sample_value("llmapi_upstream_requests_total", labels) == 1
