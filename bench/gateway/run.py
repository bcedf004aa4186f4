"""What the gateway path costs: a limit check and a cache lookup in process, cache hits over HTTP, and
chat completions proxied to a fixed-answer upstream (llmapi against a bare aiohttp proxy and LiteLLM).

    .venv/bin/python -m bench.gateway.run [--calls 5000] [--clients 32] [--duration 10] [--only proxy]

1. `Gatekeeper.admit` + `Admission.settle` and 2. `ResponseCache.lookup` + `CacheLookup.get`, each with the
in-memory store and with Redis (127.0.0.1:6379; skipped when unreachable), p50/p99 µs over sequential calls.
3. Requests/s of one cached chat completion through `llmapi serve` (in-memory stores, then Redis), against a
bare FastAPI app returning a body of the same bytes: the ceiling of this machine with this load generator.
4. The proxy path (bench/gateway/proxy_path.py): requests/s, latency and CPU of non-streamed and streamed
chat completions through each proxy pinned to core 1, and llmapi's own overhead at a fixed 500 requests/s.
Writes results.md, results.json and results.png next to this file; with --only, into raw/ beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvloop
from tests.api.keys import bearer, new_key
from tests.servers import free_port, llmapi_server

from bench.gateway import inprocess, proxy_path, report
from bench.gateway.load import Load, cache_hit, drive, ok
from llmapi.shared_redis import SharedRedis

REDIS_URL = "redis://127.0.0.1:6379/0"
ROOT = Path(__file__).resolve().parents[2]
PATH = "/v1/chat/completions"
KEY_LIMITS = {
    "requests_per_minute": 10_000_000,
    "tokens_per_minute": 1_000_000_000,
    "max_concurrent": 100_000,
}
LLMAPI_MEMORY = "llmapi, in-memory limits + cache"
LLMAPI_REDIS = "llmapi, limits + cache in Redis"
CEILING = "bare FastAPI, fixed body (ceiling)"
CACHE_TTL_S = "900"  # long enough for the retries of a noisy case; the shared Redis then drops the entry
SECTIONS = ("inprocess", "cache", "proxy")


async def in_process(calls: int, redis_up: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    redis = SharedRedis.from_url(REDIS_URL) if redis_up else None
    try:
        for store, shared in [("memory", None)] + ([("Redis", redis)] if redis else []):
            for case, measure in (("limit check", inprocess.limits), ("cache", inprocess.cache)):
                for step, (p50, p99) in (await measure(calls, shared)).items():
                    rows.append({"case": case, "step": step, "store": store, "p50_us": p50, "p99_us": p99})
    finally:
        if redis is not None:
            await redis.close()
    return rows


async def redis_answers() -> bool:
    redis = SharedRedis.from_url(REDIS_URL)
    try:
        return await redis.answers()
    finally:
        await redis.close()


def fill_cache(base_url: str, headers: dict[str, str], body: bytes) -> bytes:
    """Send the request twice: the first generates and stores (MISS), the second must be a HIT."""
    statuses = []
    for _ in range(2):
        response = httpx.post(base_url + PATH, content=body, headers=headers, timeout=120)
        response.raise_for_status()
        statuses.append(response.headers.get("x-cache"))
    if statuses != ["MISS", "HIT"]:
        raise RuntimeError(f"expected x-cache MISS then HIT, got {statuses}")
    return response.content


@contextmanager
def ceiling_server(directory: Path, body: bytes) -> Iterator[tuple[str, int]]:
    """uvicorn (one worker, uvloop + httptools as for llmapi, no access log) serving bench.gateway.ceiling."""
    (directory / "body.json").write_bytes(body)
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bench.gateway.ceiling:app", "--port", str(port)]
    command += ["--workers", "1", "--no-access-log", "--log-level", "warning"]
    env = {**os.environ, "BENCH_CEILING_BODY_FILE": str(directory / "body.json")}
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _answers(url + PATH, body):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"the ceiling app did not answer on {url}")
            time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=20)


def _answers(url: str, body: bytes) -> bool:
    try:
        return httpx.post(url, timeout=1).content == body
    except httpx.TransportError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--calls", type=int, default=5000, help="sequential calls per in-process case")
    parser.add_argument("--clients", type=int, default=32, help="concurrent HTTP clients")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per HTTP case")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per HTTP case")
    parser.add_argument("--single", type=float, default=3.0, help="measured seconds per one-client case")
    parser.add_argument("--rate", type=float, default=proxy_path.RATE, help="requests/s of the fixed rate")
    parser.add_argument(
        "--only",
        choices=SECTIONS,
        action="append",
        help="run only this section (repeatable); results then go to raw/ rather than over the committed",
    )
    args = parser.parse_args()
    sections = set(args.only or SECTIONS)
    command = " ".join([".venv/bin/python -m bench.gateway.run", *sys.argv[1:]])
    results = report.new_results(
        command=command,
        calls=args.calls,
        clients=args.clients,
        duration_s=args.duration,
        warmup_s=args.warmup,
    )
    results["meta"]["stored_answer_bytes"] = len(inprocess.answer().model_dump_json())
    started = time.monotonic()
    request = json.dumps(inprocess.REQUEST).encode()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner, tempfile.TemporaryDirectory() as tmp:
        redis_up = runner.run(redis_answers())
        if not redis_up:
            results["notes"].append(f"Redis at {REDIS_URL} did not answer: its cases were skipped.")
        if "inprocess" in sections:
            results["in_process"] = runner.run(in_process(args.calls, redis_up))

        def load(name: str, url: str, pid: int, headers: dict[str, str], hit: bool, body: bytes) -> None:
            def measured() -> Coroutine[Any, Any, Load]:
                return drive(
                    url + PATH,
                    request,
                    headers,
                    server_pid=pid,
                    clients=args.clients,
                    duration_s=args.duration,
                    warmup_s=args.warmup,
                    check=cache_hit if hit else ok,
                )

            measured_load = proxy_path.quietest(runner, measured)
            results["http"].append({"system": name, "response_bytes": len(body), **measured_load})
            print(results["http"][-1], flush=True)

        body = b""
        cases: list[tuple[str, dict[str, str]]] = [(LLMAPI_MEMORY, {})] + (
            [(LLMAPI_REDIS, {"LLMAPI_REDIS_URL": REDIS_URL})] if redis_up else []
        )
        for name, env in cases if "cache" in sections else []:
            directory = Path(tmp) / str(len(results["http"]))
            directory.mkdir()
            with llmapi_server(directory, env={**env, "LLMAPI_CACHE__TTL_SECONDS": CACHE_TTL_S}) as server:
                headers = bearer(new_key(server, role="developer", rate_limits=KEY_LIMITS))
                body = fill_cache(server.base_url, {**headers, "content-type": "application/json"}, request)
                load(name, server.base_url, server.process.pid, headers, True, body)
        if "cache" in sections:
            with ceiling_server(Path(tmp), body) as (url, pid):
                load(CEILING, url, pid, {}, False, body)
        if "proxy" in sections:
            plan = proxy_path.Plan(
                clients=args.clients,
                duration_s=args.duration,
                warmup_s=args.warmup,
                single_s=args.single,
                rate=args.rate,
                key_limits=KEY_LIMITS,
                redis_url=REDIS_URL if redis_up else None,
            )
            proxy_path.run(runner, plan, Path(tmp), results)
    results["duration_s"] = time.monotonic() - started
    report.write(results, report.HERE / "raw" if args.only else report.HERE)
    print(report.markdown(results))


if __name__ == "__main__":
    main()
