"""Results of the gateway benchmark: one dict, written as results.json, results.md and results.png."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.gateway import report_proxy

HERE = Path(__file__).parent
_VERSIONS = ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "aiohttp", "redis")


def new_results(
    *, command: str, calls: int, clients: int, duration_s: float, warmup_s: float
) -> dict[str, Any]:
    return {
        "meta": {
            "command": command,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": _commit(),
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "versions": {name: metadata.version(name) for name in _VERSIONS},
            "calls": calls,
            "clients": clients,
            "duration_s": duration_s,
            "warmup_s": warmup_s,
        },
        "in_process": [],
        "http": [],
        "proxy": [],
        "proxy_rate": [],
        "notes": [],
    }


_WHERE_A_HIT_GOES = [
    "## Where a cache hit's time goes",
    "",
    "Profiled with cProfile and by patching (the first run gave 567 requests/s, p99 366 ms):",
    "",
    "- Five plain `def` dependencies (registry, settings, usage note, admission, cache) ran in FastAPI's "
    "thread pool on every request; as `async def` the same hits went from about 520 to 955 requests/s.",
    "- Full garbage collections walked the ~576k objects of the loaded models and froze the event loop for "
    "300-350 ms each, which set the p99; `gc.freeze()` once the models are loaded cut p99 to about 50 ms.",
    "- The principal was authenticated twice per request (FastAPI solves a dependency once per distinct "
    "set of security scopes above it); it is now remembered for the request.",
    "- FastAPI's dependency solving (about 19 nodes per chat request, then some 40% of the loop's time) "
    "is skipped since commit 574dcd4: routes whose dependencies are all this API's own are called directly "
    "by the route class.",
    "- What remains, about 0.76 ms of server CPU per hit against 0.1 ms for the bare app: four middleware "
    "layers, uvicorn's and Starlette's request handling, request validation, the access log line, usage "
    "recording, and the limit check and cache lookup themselves. With Redis each hit also makes three "
    "round trips (acquire, GET, release), about 100 µs of redis-py CPU each.",
]


def write(results: dict[str, Any], directory: Path = HERE) -> None:
    directory.mkdir(exist_ok=True)
    (directory / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (directory / "results.md").write_text(markdown(results))
    plot(results, directory / "results.png")


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    versions = ", ".join(f"{name} {version}" for name, version in meta["versions"].items())
    lines = [
        "# Gateway path: a limit check, a cache lookup, cache hits over HTTP, and the proxy path",
        "",
        f"`{meta['command']}` on {meta['date']} at {meta.get('commit', 'an unknown commit')}, "
        f"{meta['cpu']} ({meta['cores']} cores), Python "
        f"{meta['python']}, {versions}; the run took {results.get('duration_s', 0):.0f} s.",
    ]
    if results["in_process"]:
        lines += _in_process(results)
    if results["http"]:
        lines += _cache_hits(results)
    if results["proxy"]:
        lines += report_proxy.markdown(results)
    if results["notes"]:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in results["notes"]]
    lines += ["", "![in-process costs and requests/s](results.png)", ""]
    return "\n".join(lines)


def _in_process(results: dict[str, Any]) -> list[str]:
    meta = results["meta"]
    lines = [
        "",
        "## In process, one call at a time",
        "",
        f"{meta['calls']:,} sequential calls per row after 200 warm-up calls, on a uvloop event loop (as "
        "`llmapi serve` runs); the parts are built as `create_app` builds them, Redis (127.0.0.1:6379, this "
        "machine) is reached through `SharedRedis` and its circuit breaker as in the server.",
        "",
        "- **Limit check**: `Gatekeeper.admit(principal, model=..., tokens=...)`, then "
        "`Admission.settle(tokens)` (timed apart), for a developer key with requests/min, tokens/min and "
        "max_concurrent set high enough never to refuse: three limits, one atomic store call each way.",
        "- **Cache**: `ResponseCache.lookup(principal, 'chat', request, max_tokens=16)` (canonical request, "
        "SHA-256 key), then `await lookup.get(GeneratedTexts)` (read, parse, validate) for a chat request "
        "of two messages at temperature 0; the stored answer has about 50 tokens of text "
        f"({meta['stored_answer_bytes']} bytes of JSON). A miss is the same request under another principal.",
        "",
        "| case | store | step | p50 µs | p99 µs |",
        "|---|---|---|---:|---:|",
    ]
    lines += [
        f"| {r['case']} | {r['store']} | {r['step']} | {_us(r['p50_us'])} | {_us(r['p99_us'])} |"
        for r in results["in_process"]
    ]
    return lines


def _cache_hits(results: dict[str, Any]) -> list[str]:
    meta = results["meta"]
    ceiling = next((r["requests_per_s"] for r in results["http"] if "ceiling" in r["system"]), None)
    size = max((r["response_bytes"] for r in results["http"]), default=0)
    lines = [
        "",
        "## Cache hits through HTTP",
        "",
        f"{meta['clients']} concurrent clients (aiohttp on uvloop, keep-alive) post the same chat completion "
        f"(temperature 0, max_tokens 16) back to back for {meta['duration_s']:.0f} s after a "
        f"{meta['warmup_s']:.0f} s warm-up; requests/s counts the responses of the measured window.",
        "",
        "- **llmapi**: a real `llmapi serve` (auth on, default models, SQLite, one process) started by "
        "`tests.servers.llmapi_server`; a developer key made through the admin API with limits that never "
        "refuse; the cache filled by one request first; every measured response checked to be 200 with "
        "`x-cache: HIT`. A hit still authenticates the key (auth cache), charges and settles the limits, "
        "looks up the cache and records usage. Default log level (info): uvicorn's access log writes a line "
        "per request. `LLMAPI_CACHE__TTL_SECONDS=900`: long enough for a case taken again, short enough that "
        "the entry left in the shared Redis lapses soon (the TTL plays no part in a read).",
        "- **Redis row**: the same with `LLMAPI_REDIS_URL`, so limits and cache live in Redis.",
        "- **Ceiling**: a bare FastAPI app (`bench/gateway/ceiling.py`: no middleware, no dependencies) "
        "under uvicorn, one worker, uvloop + httptools as for llmapi, `--no-access-log`, returning the very "
        f"bytes llmapi returned ({size} bytes; llmapi adds its `x-ratelimit-*`, `x-request-id` and "
        "`x-cache` headers).",
        "",
        f"**The load generator runs on the same {meta['cores']} cores as the server**: CPU columns say how "
        "many cores each used on average (1.00 = one core busy). A server at ~1.0 is bound by its one "
        "event loop; the sum near the core count means the machine is the limit. The last column is the "
        "server's CPU time per response: what one cache hit costs it. *Other* is the CPU the rest of the "
        "machine used meanwhile (other engineers' test runs share it): a measurement with more than 0.15 is "
        "taken again, up to 5 times, after waiting for a quiet moment, and the quietest kept.",
        "",
        "| system | requests/s | × ceiling | p50 ms | p99 ms | responses | failures "
        "| server CPU | client CPU | server CPU µs / request | other CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["http"]:
        share = f"{r['requests_per_s'] / ceiling:.2f}" if ceiling else "—"
        lines.append(
            f"| {r['system']} | {r['requests_per_s']:,.0f} | {share} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} "
            f"| {r['requests']:,} | {r['failures']} | {r['server_cpu']:.2f} | {r['client_cpu']:.2f} "
            f"| {r['server_cpu'] / r['requests_per_s'] * 1e6:,.0f} | {r.get('other_cpu', 0):.2f} |"
        )
    return [*lines, "", *_WHERE_A_HIT_GOES]


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["in_process"]
    http = results["http"]
    proxied = bool(results["proxy"])
    fig, axes = plt.subplots(
        2 if proxied else 1, 2, figsize=(15, 13 if proxied else 6.5), gridspec_kw={"width_ratios": [3, 2]}
    )
    (costs, rps) = axes[0] if proxied else axes
    if proxied:
        report_proxy.plot(results, *axes[1])
    if rows:
        _plot_in_process(rows, costs)
    else:
        costs.set_axis_off()
    if http:
        _plot_cache_hits(results, rps)
    else:
        rps.set_axis_off()
    fig.suptitle(f"Gateway path on {results['meta']['cpu']}, {results['meta']['cores']} cores")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_in_process(rows: list[dict[str, Any]], costs: Any) -> None:
    height = 0.4
    for offset, key in ((-height / 2, "p50_us"), (height / 2, "p99_us")):
        values = [r[key] for r in rows]
        bars = costs.barh([i + offset for i in range(len(rows))], values, height, label=key.split("_")[0])
        costs.bar_label(bars, labels=[_us(v) for v in values], fontsize=7, padding=2)
    costs.set_xscale("log")
    costs.set_yticks(range(len(rows)), [f"{r['case']}, {r['store']}: {r['step']}" for r in rows], fontsize=8)
    costs.invert_yaxis()
    costs.set_title("in process, one call at a time: µs (log scale, lower is better)")
    costs.legend(loc="lower right")


def _plot_cache_hits(results: dict[str, Any], rps: Any) -> None:
    http = results["http"]
    bars = rps.bar(range(len(http)), [r["requests_per_s"] for r in http], color="tab:green")
    rps.bar_label(
        bars, labels=[f"{r['requests_per_s']:,.0f}/s\np50 {r['p50_ms']:.1f} ms" for r in http], fontsize=8
    )
    rps.set_xticks(range(len(http)), [r["system"].replace(", ", ",\n") for r in http], fontsize=8)
    rps.set_title(f"cache hits over HTTP, {results['meta']['clients']} clients: requests/s")
    rps.margins(y=0.15)


def _us(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _commit() -> str:
    """The commit the run measured, `+changes` where the work tree differed from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, cwd=HERE
        ).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "src"], cwd=HERE).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"commit {head}" + (" with uncommitted changes in src/" if dirty else "")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"
