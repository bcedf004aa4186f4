"""The proxy section of results.md and results.png (rows made by bench/gateway/proxy_path.py)."""

from __future__ import annotations

from typing import Any

BARE = "bare aiohttp proxy"
LITELLM = "LiteLLM proxy"
REDIS = "llmapi, key + limits + usage in Redis"


def _row(results: dict[str, Any], system: str, mode: str, clients: int) -> dict[str, Any] | None:
    return next(
        (
            r
            for r in results["proxy"]
            if r["system"] == system and r["mode"] == mode and r["clients"] == clients
        ),
        None,
    )


def _cpu(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _ratio(value: float, base: dict[str, Any] | None, key: str) -> str:
    return f"{value / base[key]:.2f}" if base else "—"


def _per_chunk_us(results: dict[str, Any], system: str, events: int) -> float | None:
    """What streaming adds per event at one client, over what it adds to the bare proxy: µs at p50."""
    p50 = [_row(results, name, mode, 1) for name in (system, BARE) for mode in ("json", "stream")]
    if any(r is None for r in p50):
        return None
    plain, own, bare_plain, bare = (float(r["p50_ms"]) for r in p50 if r is not None)
    return ((own - plain) - (bare - bare_plain)) * 1000 / events


def _cpu_per_chunk_us(results: dict[str, Any], system: str, clients: int, events: int) -> float | None:
    """Server CPU per streamed request minus per non-streamed request, per event."""
    rows = [_row(results, system, mode, clients) for mode in ("json", "stream")]
    if any(r is None for r in rows):
        return None
    json_us, stream_us = (float(r["server_cpu"] / r["requests_per_s"] * 1e6) for r in rows if r is not None)
    return (stream_us - json_us) / events


def markdown(results: dict[str, Any]) -> list[str]:
    meta = results["meta"]
    proxy = meta["proxy"]
    clients = meta["clients"]
    events = proxy["stream_events"]
    lines = [
        "",
        "## The proxy path: chat completions through to a fixed-answer upstream",
        "",
        "Every request reaches the upstream (temperature 1, no seed: nothing is cacheable). Measured one "
        "system after the other in one run, each with its own server process started once:",
        "",
        "- **Upstream**: `bench/gateway/upstream.py`, a raw `asyncio.Protocol` on uvloop with httptools "
        "(keep-alive, no framework) answering any POST with the same chat completion JSON (with `usage`), "
        f"or, for `stream: true`, with the same {events} events in one write (role, "
        f"{proxy['content_chunks']} content chunks, finish, usage for `stream_options.include_usage`, "
        "`[DONE]`). Alone it answers well over 10,000 requests/s on one core at a few % of it (the upstream "
        "CPU column).",
        "- **bare aiohttp proxy**: `bench/gateway/proxy.py`, FastAPI under uvicorn (one worker, uvloop, "
        "httptools, no access log) forwarding the body bytes with one shared `aiohttp.ClientSession` and "
        "returning the upstream's bytes; a stream is passed on as it arrives. The ceiling of a Python proxy.",
        f"- **LiteLLM proxy** {proxy.get('litellm') or '(not installed)'}: `litellm --config` with "
        "`openai/bench-upstream` at the upstream, a master key, no database, `--num_workers 1`, "
        "`LITELLM_LOG=ERROR`, in its own venv (`make bench-litellm`).",
        "- **llmapi**: a real `llmapi serve` (tests.servers.llmapi_server: SQLite, default log level with "
        "uvicorn's access log, one process) whose models file declares only `bench-upstream` on the `openai` "
        "backend at the upstream. **admin key**: requests carry the admin key. **key + limits + usage in "
        "Redis**: `LLMAPI_REDIS_URL` set and a developer key with requests/min, tokens/min and "
        "max_concurrent limits that never refuse: the configuration replicas run.",
        "",
        f"**Cores**: each system under test is pinned to core {proxy['server_cores']} alone; the load "
        f"generator (aiohttp on uvloop, keep-alive) and the upstream share core {proxy['load_cores']}. CPU "
        "columns are cores used on average (1.00 = one core busy); a server at ~1.0 is bound by its core. "
        "*Other* is the CPU the rest of the machine used meanwhile (other engineers' test runs share it): a "
        "measurement with more than 0.15 is taken again, up to 5 times, after waiting (up to 60 s) for a "
        "moment in which the machine is idle, and the quietest kept.",
        "",
        f"### {clients} clients back to back, {meta['duration_s']:.0f} s after {meta['warmup_s']:.0f} s "
        "warm-up",
        "",
        "Every response checked: 200, a whole chat completion not served from a cache, or a whole stream "
        f"of {events} events ending in `[DONE]`.",
        "",
        "| system | mode | requests/s | × bare proxy | × LiteLLM | p50 ms | p50 × LiteLLM's | p99 ms "
        "| failures | server CPU | server CPU µs / request | client CPU | upstream CPU | Redis CPU "
        "| other CPU |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode in ("json", "stream"):
        bare, litellm = _row(results, BARE, mode, clients), _row(results, LITELLM, mode, clients)
        for r in (r for r in results["proxy"] if r["mode"] == mode and r["clients"] == clients):
            lines.append(
                f"| {r['system']} | {mode} | {r['requests_per_s']:,.0f} "
                f"| {_ratio(r['requests_per_s'], bare, 'requests_per_s')} "
                f"| {_ratio(r['requests_per_s'], litellm, 'requests_per_s')} | {r['p50_ms']:.1f} "
                f"| {_ratio(r['p50_ms'], litellm, 'p50_ms')} | {r['p99_ms']:.1f} | {r['failures']} "
                f"| {r['server_cpu']:.2f} | {r['server_cpu'] / r['requests_per_s'] * 1e6:,.0f} "
                f"| {r['client_cpu']:.2f} | {r['upstream_cpu']:.2f} | {_cpu(r.get('redis_cpu'))} "
                f"| {r['other_cpu']:.2f} |"
            )
    lines += [
        "",
        f"### One client, {proxy['single_s']:.0f} s after 1 s warm-up: latency without queueing, and what "
        "streaming costs per event",
        "",
        "*Per event* is (stream p50 − non-streamed p50) of the system minus the same difference for the bare "
        f"proxy, over the {events} events: the time the system's stream handling adds per chunk at p50. "
        f"*CPU per event* is (server CPU per streamed request − per non-streamed one) / {events}, at "
        f"{clients} clients.",
        "",
        "| system | p50 ms | p99 ms | stream p50 ms | stream p99 ms | added per event µs (p50) "
        "| server CPU per event µs |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for system in dict.fromkeys(r["system"] for r in results["proxy"]):
        plain, stream = _row(results, system, "json", 1), _row(results, system, "stream", 1)
        if plain is None or stream is None:
            continue
        added = _per_chunk_us(results, system, events)
        cpu = _cpu_per_chunk_us(results, system, clients, events)
        lines.append(
            f"| {system} | {plain['p50_ms']:.2f} | {plain['p99_ms']:.2f} | {stream['p50_ms']:.2f} "
            f"| {stream['p99_ms']:.2f} | {'—' if added is None or system == BARE else f'{added:,.0f}'} "
            f"| {'—' if cpu is None else f'{cpu:,.0f}'} |"
        )
    lines += _fixed_rate(results)
    lines += _goals(results)
    return [*lines, *_WHERE_A_PROXIED_REQUEST_GOES]


_WHERE_A_PROXIED_REQUEST_GOES = [
    "",
    "### Where a proxied request's time goes",
    "",
    "`.venv/bin/python -m bench.gateway.profile_proxy [--redis] [--stream]` (py-spy, `pip install py-spy` "
    "into .venv) samples the server under the same load and writes raw/profile-*.md. At commit 269f9ba, "
    "non-streamed, with key + limits + usage in Redis, about 760 µs of server CPU a request (the bare "
    "aiohttp proxy: about 220-290 µs), spread thin:",
    "",
    "- **HTTP serving, about 240 µs**: FastAPI/Starlette routing and responses 101 µs, uvicorn's protocol "
    "70 µs, the event loop 48 µs, uvicorn's access log 21 µs.",
    "- **aiohttp to the upstream, about 100 µs**, as in the bare proxy; the pass-through service, backend "
    "and pool around it about 40 µs.",
    "- **Limits, about 100 µs**: admission 74 µs and its settle 7 µs, Redis included (redis-py 66 µs, "
    "SharedRedis 27 µs): the checks of one event-loop turn go to Redis as one pipeline (`RedisBatch`).",
    "- **The rest of llmapi**: authentication 30 µs, reading and validating the body 36 µs, the metering "
    "service and middleware 53 µs, usage recording 31-42 µs (the aiosqlite thread), the disconnect watcher "
    "8 µs.",
    "",
    "Fixed since the first profile (commit e90a7f7: 1,320-1,640 µs a request with Redis, 2,200 µs "
    "streamed): FastAPI's dependency solving (120-155 µs; routes whose dependencies are all ours are called "
    "directly), a Redis round trip per limit call (about 300 µs for two; now batched per loop turn), "
    "redis-py's `socket_timeout` (a `wait_for` Task per command) and its `Script` wrapper, runtime Protocol "
    "isinstance checks (25-45 µs; passed-through models are classified once), `dataclasses.asdict` per "
    "usage record, Accept parsing per request; a stream's events now go out one write per upstream read, "
    "and only the events metering reads are parsed.",
]


def _fixed_rate(results: dict[str, Any]) -> list[str]:
    if not results["proxy_rate"]:
        return []
    meta = results["meta"]
    lines = [
        "",
        f"### Fixed rate: {meta['proxy']['rate']:,.0f} requests/s, open loop, {meta['duration_s']:.0f} s",
        "",
        "A request is sent every 1/rate s whether or not the earlier ones were answered (up to 256 "
        "connections); latency counts from when a request was due. *Overhead* is the gateway's own time per "
        "request (excluding the upstream) from the `x-llmapi-overhead-ms` response header; n/a where the "
        "server does not send it.",
        "",
        "| system | target/s | answered/s | p50 ms | p99 ms | overhead p50 ms | overhead p99 ms | failures "
        "| server CPU | Redis CPU | other CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["proxy_rate"]:
        o50 = "n/a" if r["overhead_p50_ms"] is None else f"{r['overhead_p50_ms']:.2f}"
        o99 = "n/a" if r["overhead_p99_ms"] is None else f"{r['overhead_p99_ms']:.2f}"
        lines.append(
            f"| {r['system']} | {r['target_per_s']:,.0f} | {r['requests_per_s']:,.0f} | {r['p50_ms']:.1f} "
            f"| {r['p99_ms']:.1f} | {o50} | {o99} | {r['failures']} | {r['server_cpu']:.2f} "
            f"| {_cpu(r.get('redis_cpu'))} | {r['other_cpu']:.2f} |"
        )
    return lines


def _goals(results: dict[str, Any]) -> list[str]:
    meta = results["meta"]
    clients, events = meta["clients"], meta["proxy"]["stream_events"]
    redis, bare = _row(results, REDIS, "json", clients), _row(results, BARE, "json", clients)
    litellm = _row(results, LITELLM, "json", clients)
    rate = next(iter(results["proxy_rate"]), None)
    added = _per_chunk_us(results, REDIS, events)

    def verdict(value: float | None, goal: float, below: bool) -> str:
        if value is None:
            return "n/a"
        return "met" if (value < goal if below else value >= goal) else "not met"

    share = redis["requests_per_s"] / bare["requests_per_s"] if redis and bare else None
    over = redis["requests_per_s"] / litellm["requests_per_s"] if redis and litellm else None
    p50 = redis["p50_ms"] / litellm["p50_ms"] if redis and litellm else None
    o99 = rate["overhead_p99_ms"] if rate else None
    goals = [
        ("requests/s ≥ 0.6 × bare aiohttp proxy", share, 0.6, False, "×"),
        ("requests/s ≥ 25 × LiteLLM", over, 25, False, "×"),
        ("p50 ≤ 1/20 of LiteLLM's", p50, 0.05, True, "×"),
        (f"overhead p99 < 5 ms at {meta['proxy']['rate']:,.0f} requests/s", o99, 5, True, "ms"),
        ("streaming adds < 1 ms per chunk at p50", None if added is None else added / 1000, 1, True, "ms"),
    ]
    lines = [
        "",
        "### The issue's goals, for llmapi with key + limits + usage in Redis",
        "",
        "| goal | measured | |",
        "|---|---:|---|",
    ]
    for text, value, goal, below, unit in goals:
        shown = "n/a" if value is None else f"{value:.3f} {unit}" if value < 1 else f"{value:,.2f} {unit}"
        lines.append(f"| {text} | {shown} | {verdict(value, goal, below)} |")
    return lines


def plot(results: dict[str, Any], rps: Any, latency: Any) -> None:
    clients = results["meta"]["clients"]
    systems = list(dict.fromkeys(r["system"] for r in results["proxy"]))
    width = 0.4
    for offset, mode, color in ((-width / 2, "json", "tab:blue"), (width / 2, "stream", "tab:orange")):
        rows = [_row(results, system, mode, clients) for system in systems]
        values = [r["requests_per_s"] if r else 0 for r in rows]
        bars = rps.bar([i + offset for i in range(len(systems))], values, width, label=mode, color=color)
        rps.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=7)
        p50 = [r["p50_ms"] if r else 0 for r in rows]
        bars = latency.bar([i + offset for i in range(len(systems))], p50, width, label=mode, color=color)
        latency.bar_label(bars, labels=[f"{v:.1f}" for v in p50], fontsize=7)
    labels = [s.replace(", ", ",\n").replace(" + ", " +\n") for s in systems]
    rps.set_xticks(range(len(systems)), labels, fontsize=8)
    rps.set_title(f"proxied to a fixed-answer upstream, {clients} clients, server on one core: requests/s")
    rps.legend()
    rps.margins(y=0.15)
    latency.set_xticks(range(len(systems)), labels, fontsize=8)
    latency.set_yscale("log")
    latency.set_title("the same: p50 ms (log scale, lower is better)")
    latency.legend()
