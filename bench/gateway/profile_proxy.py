"""Where llmapi's time goes on the proxy path: py-spy samples a real `llmapi serve` under the proxy load.

    .venv/bin/pip install py-spy      # into .venv only; not a project dependency
    .venv/bin/python -m bench.gateway.profile_proxy [--redis] [--stream] [--seconds 20] [--rate 250]

Starts the fixed-answer upstream and llmapi (admin key, or with --redis a developer key with limits and
usage in Redis) as bench/gateway/proxy_path.py does, drives 32 clients back to back, and records the server
with `py-spy record --nonblocking --format raw` meanwhile. Writes raw/profile-<case>.txt (collapsed stacks,
for flamegraph tools or speedscope) and raw/profile-<case>.md: the server's samples by layer (own time),
llmapi's own time by module, the steps of the request path (inclusive), and the top functions, each also as
µs of server CPU per request (measured unsampled). Sampling costs the server a little with --nonblocking.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import orjson
import uvloop

from bench.gateway import proxy_path, systems
from bench.gateway.load import drive, not_cached, whole_stream
from bench.gateway.run import KEY_LIMITS

RAW = Path(__file__).parent / "raw"
# Own time: each sample goes to the first layer that one of its frames matches, from the innermost frame out
# (redis-py called by the limit check counts as redis-py; the limit check's own lines as llmapi).
LAYERS = [
    ("redis-py", r"\(redis/"),
    ("aiohttp (client to the upstream)", r"\(aiohttp/|\(multidict|\(yarl"),
    ("usage writes: aiosqlite thread, SQLAlchemy", r"aiosqlite|\(sqlalchemy/|threading\.py"),
    ("pydantic", r"\(pydantic"),
    ("logging", r"\(logging/|uvicorn/logging"),
    ("prometheus_client", r"prometheus_client"),
    ("typing (isinstance on a Protocol)", r"\(typing\.py"),
    ("asyncio (tasks, futures, timeouts)", r"\(asyncio/(tasks|futures|timeouts|locks|queues)\.py"),
    ("llmapi's own code", r"llmapi/"),
    ("FastAPI dependency solving", r"fastapi/dependencies/"),
    ("FastAPI / Starlette (routing, requests, responses)", r"\((fastapi|starlette)/"),
    ("uvicorn HTTP protocol", r"\(uvicorn/"),
    ("event loop (uvloop: sockets, callbacks)", r"Runner\.run|asyncio/runners|uvloop"),
]
# Inclusive: a sample counts for every step one of its frames matches.
STEPS = [
    ("FastAPI dependency solving (authentication, inference deps)", r"solve_dependencies"),
    ("authentication", r"llmapi/(api/security|auth/|services/identity)"),
    ("request body: read, decode, validate (BodyDecoder)", r"llmapi/api/request_body\.py"),
    ("admission: limits, their Redis calls included", r"llmapi/(services/admission|ratelimit/)"),
    ("admission settle (after the answer)", r"Admission\.settle"),
    ("response cache", r"llmapi/(services/response_cache|cache/)"),
    ("forwarding: pass-through service, backend, pool, aiohttp", r"llmapi/(services/forwarding|backends/)"),
    ("metering service (meter, usage note)", r"llmapi/services/metering\.py"),
    ("isinstance on a runtime_checkable Protocol", r"_ProtocolMeta\.__instancecheck__"),
    ("disconnect watcher", r"llmapi/api/disconnect\.py"),
    (
        "metering middleware (own lines, headers)",
        r"MeteringMiddleware\.__call__[^;]*(;[^;]*(datastructures|time))?$",
    ),
    ("negotiation (Accept header, per request)", r"llmapi/serialization/negotiation\.py"),
    (
        "usage: record, batch write (asdict, SQLAlchemy, aiosqlite)",
        r"UsageRecorder|MeteringMiddleware\._record|aiosqlite",
    ),
    ("gateway metrics (prometheus_client)", r"prometheus_client"),
    ("SharedRedis (circuit breaker around each call)", r"llmapi/shared_redis\.py"),
    ("redis-py", r"\(redis/"),
    ("aiohttp", r"\(aiohttp/"),
    ("uvicorn access log", r"RequestResponseCycle\.send[^;]*;Logger\.info"),
]
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def summarize(stacks: Counter[str], cpu_us_per_request: float) -> list[str]:
    """Shares of the samples, and the µs per request they stand for (of `cpu_us_per_request`)."""
    total = sum(stacks.values())

    def line(name: str, count: int) -> str:
        return f"| {name} | {count / total:.1%} | {count / total * cpu_us_per_request:,.0f} |"

    layers: Counter[str] = Counter()
    modules: Counter[str] = Counter()
    compiled = [(name, re.compile(pattern)) for name, pattern in LAYERS]
    for stack, count in stacks.items():
        frames = stack.split(";")
        layer = next(
            (name for frame in reversed(frames) for name, regex in compiled if regex.search(frame)), "other"
        )
        layers[layer] += count
        if layer == "llmapi's own code":
            frame = next(f for f in reversed(frames) if "llmapi/" in f)
            modules[_short(frame).split("(", 1)[1].rstrip(")")] += count
    lines = [
        f"{total} samples of the server's threads (py-spy, not idle); {cpu_us_per_request:,.0f} µs of server "
        "CPU per request",
        "",
        "| own time by layer | share | µs / request |",
        "|---|---:|---:|",
    ]
    lines += [line(name, count) for name, count in layers.most_common()]
    lines += ["", "| llmapi's own time by module | share | µs / request |", "|---|---:|---:|"]
    lines += [line(name, count) for name, count in modules.most_common(15)]
    lines += ["", "| step (inclusive) | share | µs / request |", "|---|---:|---:|"]
    for name, pattern in STEPS:
        regex = re.compile(pattern)
        lines.append(line(name, sum(count for stack, count in stacks.items() if regex.search(stack))))
    own: Counter[str] = Counter()
    for stack, count in stacks.items():
        own[_short(stack.rsplit(";", 1)[-1])] += count
    lines += ["", "| function (own time) | share | µs / request |", "|---|---:|---:|"]
    lines += [line(function, count) for function, count in own.most_common(30)]
    return lines


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['function']} ({path})"


def read_raw(path: Path) -> Counter[str]:
    stacks: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    return stacks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--redis", action="store_true", help="key + limits + usage in Redis")
    parser.add_argument("--stream", action="store_true", help="streamed chat completions")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    case = ("redis" if args.redis else "admin") + ("-stream" if args.stream else "")
    binary = Path(sys.executable).parent / "py-spy"
    if not binary.exists():
        raise SystemExit(f"{binary} is missing: .venv/bin/pip install py-spy")
    RAW.mkdir(exist_ok=True)
    out = RAW / f"profile-{case}.txt"
    os.sched_setaffinity(0, proxy_path.LOAD_CORES)
    body = orjson.dumps(proxy_path.STREAM_REQUEST if args.stream else proxy_path.REQUEST)
    check = whole_stream(proxy_path.STREAM_EVENTS) if args.stream else not_cached
    with tempfile.TemporaryDirectory() as tmp, systems.upstream(proxy_path.LOAD_CORES) as up:
        env = {"LLMAPI_REDIS_URL": "redis://127.0.0.1:6379/0"} if args.redis else {}
        key = {"role": "developer", "rate_limits": KEY_LIMITS} if args.redis else None
        with systems.llmapi(up.url, proxy_path.SERVER_CORES, Path(tmp), env, key) as server:

            async def load(seconds: float, warmup: float) -> tuple[float, float]:
                measured = await drive(
                    server.url + systems.PATH,
                    body,
                    server.headers,
                    server_pid=server.pid,
                    clients=args.clients,
                    duration_s=seconds,
                    warmup_s=warmup,
                    check=check,
                )
                if measured.failures:
                    raise SystemExit(f"{measured.failures} failures: {measured.first_failure}")
                return measured.requests_per_s, measured.server_cpu / measured.requests_per_s * 1e6

            unsampled, cpu_us = uvloop.run(load(5, 2))
            command = [str(binary), "record", "--pid", str(server.pid), "--format", "raw", "--nonblocking"]
            command += ["--rate", str(args.rate), "--duration", str(int(args.seconds)), "--output", str(out)]
            spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            sampled, _ = uvloop.run(load(args.seconds - 1, 1))
            _, errors = spy.communicate(timeout=60)
            if spy.returncode != 0:
                raise SystemExit(f"py-spy failed: {errors.decode(errors='replace')}")
    print(f"llmapi, {case}: {unsampled:,.0f} requests/s unsampled, {sampled:,.0f} while sampled; {out}")
    report = "\n".join(summarize(read_raw(out), cpu_us))
    (RAW / f"profile-{case}.md").write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
