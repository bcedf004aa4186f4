"""HTTP load: N clients posting the same request back to back on keep-alive connections (aiohttp).

aiohttp rather than httpx: httpx costs more CPU per request than a fast server does under concurrency, and
the client shares the machine's cores with the server under test.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

import aiohttp

from bench.gateway.inprocess import quantiles

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Load:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int  # not 200, or not `x-cache: HIT` where a hit was expected
    first_failure: str | None
    server_cpu: float  # cores the server process used, on average (1.0 = one core busy)
    client_cpu: float  # the same for this load generator


async def drive(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    server_pid: int,
    clients: int,
    duration_s: float,
    warmup_s: float,
    expect_hit: bool,
) -> Load:
    """A warm-up of `warmup_s`, then `duration_s` measured; requests/s counts the measured responses."""
    connector = aiohttp.TCPConnector(limit=clients)
    headers = {"content-type": "application/json", **headers}
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as session:

        async def client(deadline: float, latencies: list[float], failures: list[str]) -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    ok = response.status == 200 and (
                        not expect_hit or response.headers.get("x-cache") == "HIT"
                    )
                latencies.append((time.perf_counter() - start) * 1000)
                if not ok:
                    failures.append(f"{response.status} x-cache={response.headers.get('x-cache')}")

        async def phase(seconds: float) -> tuple[list[float], list[str], float]:
            latencies: list[float] = []
            failures: list[str] = []
            start = time.perf_counter()
            await asyncio.gather(*(client(start + seconds, latencies, failures) for _ in range(clients)))
            return latencies, failures, time.perf_counter() - start

        await phase(warmup_s)
        server_before, client_before = _cpu_seconds(server_pid), time.process_time()
        latencies, failures, wall = await phase(duration_s)
        server_cpu = (_cpu_seconds(server_pid) - server_before) / wall
        client_cpu = (time.process_time() - client_before) / wall
    p50, p99 = quantiles(latencies)
    first = failures[0] if failures else None
    return Load(len(latencies) / wall, p50, p99, len(latencies), len(failures), first, server_cpu, client_cpu)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (its threads included)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS
