"""The proxy path: chat completions that reach a fixed-answer upstream through each system, side by side.

Cores (the machine has two): every system under test runs pinned to core 1 (SERVER_CORES), alone; this load
generator and the upstream share core 0 (LOAD_CORES). Per system, with one server process started once:
32 clients back to back (non-streamed, then streamed), one client back to back (non-streamed, then streamed:
the latency without queueing, from which the streaming cost per chunk is taken), and, for llmapi with Redis,
a fixed rate of 500 requests/s that reads the gateway's own overhead from `x-llmapi-overhead-ms`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.gateway import systems, upstream
from bench.gateway.load import (
    Load,
    RateLoad,
    drive,
    drive_rate,
    not_cached,
    process_named,
    wait_quiet,
    whole_stream,
)

SERVER_CORES = {1}
LOAD_CORES = {0}
BARE = "bare aiohttp proxy"
LITELLM = "LiteLLM proxy"
LLMAPI_ADMIN = "llmapi, admin key"
LLMAPI_REDIS = "llmapi, key + limits + usage in Redis"
RATE = 500.0
# Other engineers' test runs share this machine: a measurement during which processes other than the ones
# measured used more than this many cores is taken again (at most ATTEMPTS times; the quietest is kept).
BUSY_NEIGHBOUR = 0.15
ATTEMPTS = 5
# Not cacheable (temperature 1, no seed): every request reaches the upstream.
REQUEST: dict[str, Any] = {
    "model": systems.MODEL,
    "messages": [
        {"role": "system", "content": "You are a concise assistant. Answer in one or two sentences."},
        {"role": "user", "content": "What are the first two things to check when a nightly export is slow?"},
    ],
    "temperature": 1,
    "max_tokens": 64,
}
STREAM_REQUEST = {**REQUEST, "stream": True, "stream_options": {"include_usage": True}}
# role, content pieces, finish, usage, [DONE]
STREAM_EVENTS = upstream.CONTENT_CHUNKS + 4


@dataclass(frozen=True)
class Plan:
    clients: int
    duration_s: float
    warmup_s: float
    single_s: float  # measured seconds of each one-client case
    rate: float
    key_limits: dict[str, int]
    redis_url: str | None  # None: Redis did not answer, the Redis system is left out


def systems_under_test(plan: Plan, up: systems.Running, tmp: Path) -> Iterator[tuple[str, Starter]]:
    yield BARE, lambda: systems.bare_proxy(up.url, SERVER_CORES, tmp / "bare-proxy.log")
    if systems.litellm_installed():
        yield LITELLM, lambda: systems.litellm_proxy(up.url, SERVER_CORES, tmp)
    yield LLMAPI_ADMIN, lambda: systems.llmapi(up.url, SERVER_CORES, tmp / "admin", {}, None)
    if plan.redis_url is not None:
        env = {"LLMAPI_REDIS_URL": plan.redis_url}
        key = {"role": "developer", "rate_limits": plan.key_limits}
        yield LLMAPI_REDIS, lambda: systems.llmapi(up.url, SERVER_CORES, tmp / "redis", env, key)


Starter = Callable[[], AbstractContextManager[systems.Running]]


def run(runner: asyncio.Runner, plan: Plan, tmp: Path, results: dict[str, Any]) -> None:
    """Fills results["proxy"] (rows), results["proxy_rate"] and results["meta"]["proxy"]."""
    os.sched_setaffinity(0, LOAD_CORES)
    if not systems.litellm_installed():
        try:
            systems.install_litellm()
        except Exception as exc:  # the other systems are still worth measuring
            results["notes"].append(f"LiteLLM could not be installed ({exc}): its rows are missing.")
    results["meta"]["proxy"] = {
        "server_cores": sorted(SERVER_CORES),
        "load_cores": sorted(LOAD_CORES),
        "litellm": systems.litellm_version() if systems.litellm_installed() else None,
        "stream_events": STREAM_EVENTS,
        "content_chunks": upstream.CONTENT_CHUNKS,
        "single_s": plan.single_s,
        "rate": plan.rate,
    }
    with systems.upstream(LOAD_CORES) as up:
        for name, start in systems_under_test(plan, up, tmp):
            try:
                with start() as server:
                    measure(runner, plan, name, server, up, results)
            except RuntimeError as exc:
                results["notes"].append(f"{name}: {exc}")
                print(f"{name} failed: {exc}", flush=True)


def measure(
    runner: asyncio.Runner,
    plan: Plan,
    name: str,
    server: systems.Running,
    up: systems.Running,
    results: dict[str, Any],
) -> None:
    url = server.url + systems.PATH
    redis_pid = process_named("redis-server") if plan.redis_url else None
    json_body, stream_body = orjson.dumps(REQUEST), orjson.dumps(STREAM_REQUEST)

    def load(mode: str, body: bytes, clients: int, seconds: float, warmup: float) -> None:
        check = whole_stream(STREAM_EVENTS) if mode == "stream" else not_cached

        def measured() -> Coroutine[Any, Any, Load]:
            return drive(
                url,
                body,
                server.headers,
                server_pid=server.pid,
                clients=clients,
                duration_s=seconds,
                warmup_s=warmup,
                check=check,
                upstream_pid=up.pid,
                redis_pid=redis_pid,
            )

        row = {"system": name, "mode": mode, "clients": clients}
        results["proxy"].append({**row, **quietest(runner, measured)})
        print(results["proxy"][-1], flush=True)

    def fixed_rate() -> Coroutine[Any, Any, RateLoad]:
        return drive_rate(
            url,
            json_body,
            server.headers,
            server_pid=server.pid,
            rate=plan.rate,
            duration_s=plan.duration_s,
            warmup_s=plan.warmup_s,
            check=not_cached,
            upstream_pid=up.pid,
            redis_pid=redis_pid,
        )

    load("json", json_body, plan.clients, plan.duration_s, plan.warmup_s)
    load("stream", stream_body, plan.clients, plan.duration_s, plan.warmup_s)
    load("json", json_body, 1, plan.single_s, 1.0)
    load("stream", stream_body, 1, plan.single_s, 1.0)
    if name == LLMAPI_REDIS:
        results["proxy_rate"].append({"system": name, **quietest(runner, fixed_rate)})
        print(results["proxy_rate"][-1], flush=True)


def quietest(
    runner: asyncio.Runner, measure: Callable[[], Coroutine[Any, Any, Load | RateLoad]]
) -> dict[str, Any]:
    """The measurement, taken again while other processes kept the machine busy; the quietest one."""
    taken: list[Load | RateLoad] = []
    while len(taken) < ATTEMPTS:
        wait_quiet(patience_s=60)
        taken.append(runner.run(measure()))
        if taken[-1].other_cpu <= BUSY_NEIGHBOUR:
            break
    best = min(taken, key=lambda load: load.other_cpu)
    return {**asdict(best), "attempts": len(taken)}
