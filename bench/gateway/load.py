"""HTTP load with aiohttp on keep-alive connections: N clients back to back (closed loop), or a fixed rate.

aiohttp rather than httpx: httpx costs more CPU per request than a fast server does under concurrency, and
the client shares the machine's cores with the server under test.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.gateway.inprocess import quantiles

_TICKS = os.sysconf("SC_CLK_TCK")
OVERHEAD_HEADER = "x-llmapi-overhead-ms"

# (status, headers, body) -> None when the response is as expected, else what was wrong.
Check = Callable[[int, Mapping[str, str], bytes], str | None]


def ok(status: int, headers: Mapping[str, str], body: bytes) -> str | None:
    return None if status == 200 else f"{status} {body[:200]!r}"


def cache_hit(status: int, headers: Mapping[str, str], body: bytes) -> str | None:
    if status == 200 and headers.get("x-cache") == "HIT":
        return None
    return f"{status} x-cache={headers.get('x-cache')}"


def not_cached(status: int, headers: Mapping[str, str], body: bytes) -> str | None:
    """A 200 that reached the upstream (no `x-cache: HIT`) and is a whole chat completion."""
    if status != 200 or headers.get("x-cache") == "HIT" or b'"chat.completion"' not in body:
        return f"{status} x-cache={headers.get('x-cache')} {body[:200]!r}"
    return None


def whole_stream(events: int) -> Check:
    """A 200 event stream of `events` data lines, the last `data: [DONE]`."""

    def check(status: int, headers: Mapping[str, str], body: bytes) -> str | None:
        count = body.count(b"data:")
        if status == 200 and count == events and body.rstrip().endswith(b"[DONE]"):
            return None
        return f"{status} {count} events, ends {body[-80:]!r}"

    return check


@dataclass(frozen=True)
class Load:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int  # not as `check` expects
    first_failure: str | None
    server_cpu: float  # cores the server's processes used, on average (1.0 = one core busy)
    client_cpu: float  # the same for this load generator
    upstream_cpu: float | None = None  # the same for the upstream behind a proxy
    redis_cpu: float | None = None  # the same for redis-server (shared: others' use of it counts too)
    other_cpu: float = 0.0  # the same for every other process on the machine: a busy neighbour shows here


@dataclass(frozen=True)
class RateLoad:
    target_per_s: float
    requests_per_s: float  # responses of the measured window per second
    p50_ms: float  # from the moment a request was due, so a server that falls behind shows it
    p99_ms: float
    overhead_p50_ms: float | None  # from the `x-llmapi-overhead-ms` header, None where it is absent
    overhead_p99_ms: float | None
    overhead_samples: int
    requests: int
    failures: int
    first_failure: str | None
    server_cpu: float
    client_cpu: float
    upstream_cpu: float | None = None
    redis_cpu: float | None = None
    other_cpu: float = 0.0


async def drive(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    server_pid: int,
    clients: int,
    duration_s: float,
    warmup_s: float,
    check: Check = ok,
    upstream_pid: int | None = None,
    redis_pid: int | None = None,
) -> Load:
    """A warm-up of `warmup_s`, then `duration_s` measured; requests/s counts the measured responses."""
    connector = aiohttp.TCPConnector(limit=clients)
    headers = {"content-type": "application/json", **headers}
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as session:

        async def client(deadline: float, latencies: list[float], failures: list[str]) -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    content = await response.read()
                latencies.append((time.perf_counter() - start) * 1000)
                if (wrong := check(response.status, response.headers, content)) is not None:
                    failures.append(wrong)

        async def phase(seconds: float) -> tuple[list[float], list[str], float]:
            latencies: list[float] = []
            failures: list[str] = []
            start = time.perf_counter()
            await asyncio.gather(*(client(start + seconds, latencies, failures) for _ in range(clients)))
            return latencies, failures, time.perf_counter() - start

        await phase(warmup_s)
        cpu, upstream, redis = ProcessTreeCPU(server_pid), _optional(upstream_pid), _optional(redis_pid)
        client_before, busy_before = time.process_time(), machine_busy_seconds()
        latencies, failures, wall = await phase(duration_s)
        server_cpu = cpu.seconds() / wall
        client_cpu = (time.process_time() - client_before) / wall
        upstream_cpu = upstream.seconds() / wall if upstream else None
        redis_cpu = redis.seconds() / wall if redis else None
        busy = (machine_busy_seconds() - busy_before) / wall
        other_cpu = max(0.0, busy - server_cpu - client_cpu - (upstream_cpu or 0.0) - (redis_cpu or 0.0))
    p50, p99 = quantiles(latencies)
    first = failures[0] if failures else None
    return Load(
        len(latencies) / wall,
        p50,
        p99,
        len(latencies),
        len(failures),
        first,
        server_cpu,
        client_cpu,
        upstream_cpu,
        redis_cpu,
        other_cpu,
    )


async def drive_rate(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    server_pid: int,
    rate: float,
    duration_s: float,
    warmup_s: float,
    check: Check = ok,
    connections: int = 256,
    upstream_pid: int | None = None,
    redis_pid: int | None = None,
) -> RateLoad:
    """Open loop: a request is sent every 1/rate s whether or not earlier ones have been answered."""
    connector = aiohttp.TCPConnector(limit=connections)
    headers = {"content-type": "application/json", **headers}
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as session:

        async def one(due: float, out: _RateSamples | None) -> None:
            async with session.post(url, data=body, headers=headers) as response:
                content = await response.read()
            if out is None:
                return
            out.latencies.append((time.perf_counter() - due) * 1000)
            if (value := response.headers.get(OVERHEAD_HEADER)) is not None:
                out.overheads.append(float(value))
            if (wrong := check(response.status, response.headers, content)) is not None:
                out.failures.append(wrong)

        async def phase(seconds: float, out: _RateSamples | None) -> float:
            start = time.perf_counter()
            tasks = []
            for i in range(int(seconds * rate)):
                due = start + i / rate
                if (wait := due - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                tasks.append(asyncio.ensure_future(one(due, out)))
            await asyncio.gather(*tasks)
            return time.perf_counter() - start

        await phase(warmup_s, None)
        samples = _RateSamples([], [], [])
        cpu, upstream, redis = ProcessTreeCPU(server_pid), _optional(upstream_pid), _optional(redis_pid)
        client_before, busy_before = time.process_time(), machine_busy_seconds()
        wall = await phase(duration_s, samples)
        server_cpu = cpu.seconds() / wall
        client_cpu = (time.process_time() - client_before) / wall
        upstream_cpu = upstream.seconds() / wall if upstream else None
        redis_cpu = redis.seconds() / wall if redis else None
        busy = (machine_busy_seconds() - busy_before) / wall
        other_cpu = max(0.0, busy - server_cpu - client_cpu - (upstream_cpu or 0.0) - (redis_cpu or 0.0))
    p50, p99 = quantiles(samples.latencies)
    o50, o99 = quantiles(samples.overheads) if len(samples.overheads) > 1 else (None, None)
    failures = samples.failures
    return RateLoad(
        rate,
        len(samples.latencies) / wall,
        p50,
        p99,
        o50,
        o99,
        len(samples.overheads),
        len(samples.latencies),
        len(failures),
        failures[0] if failures else None,
        server_cpu,
        client_cpu,
        upstream_cpu,
        redis_cpu,
        other_cpu,
    )


@dataclass
class _RateSamples:
    latencies: list[float]
    overheads: list[float]
    failures: list[str]


class ProcessTreeCPU:
    """User + system CPU seconds a process and its descendants (as of now) used since construction."""

    def __init__(self, pid: int) -> None:
        self._pids = [pid, *descendants(pid)]
        self._before = sum(_cpu_seconds(p) for p in self._pids)

    def seconds(self) -> float:
        return sum(_cpu_seconds(p) for p in self._pids) - self._before


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent on anything but idle and I/O wait since boot (/proc/stat)."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, stat.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICKS


def wait_quiet(*, below: float = 0.1, window_s: float = 0.5, patience_s: float = 30.0) -> float:
    """Waits (up to `patience_s`) for a `window_s` in which the machine used less than `below` cores;
    returns the cores used in the last window."""
    deadline = time.monotonic() + patience_s
    while True:
        before = machine_busy_seconds()
        time.sleep(window_s)
        busy = (machine_busy_seconds() - before) / window_s
        if busy < below or time.monotonic() > deadline:
            return busy


def process_named(name: str) -> int | None:
    """The id of a process whose command name is `name` (e.g. redis-server), or None."""
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == name:
                return int(comm.parent.name)
        except OSError:
            continue
    return None


def _optional(pid: int | None) -> ProcessTreeCPU | None:
    return None if pid is None else ProcessTreeCPU(pid)


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in map(int, children.read_text().split()):
            found += [child, *descendants(child)]
    return found


def pin(pid: int, cores: set[int]) -> None:
    """Every thread of `pid` and of its descendants onto `cores` (threads they start later inherit it)."""
    for process in (pid, *descendants(pid)):
        for task in Path(f"/proc/{process}/task").iterdir():
            os.sched_setaffinity(int(task.name), cores)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (its threads included); 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS
