"""Engine benchmark through the HTTP API: llmapi against `transformers serve --continuous-batching` and
llama.cpp's server, on llmapi's default model (SmolLM2-135M-Instruct, Llama-shaped) and GPT-2 small.

    .venv/bin/python -m bench.engine.run [--quick] [--dtype bfloat16|float32] [--models NAME ...]
        [--skip-memory] [--baselines]

Every system runs the same weights in the same dtype with the same threads, greedy, EOS off, 128 new tokens
per stream, on the same seeded prompts (new prompts each round), at 1, 16 and 64 concurrent streams
(llama.cpp's server runs one sequence at a time: 1 stream). llama.cpp needs `make bench-llamacpp` (skipped
without it).
Also measured on the default model: prefix caching (time to first token of a prompt sharing a 500-token prefix
with the one before, against a server with prefix caching off) and the server's memory over 1,000 requests.
One system runs at a time. Writes results.md, results.json and results.png next to this file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.engine import baselines, llama_cpp, models, peers, report
from bench.engine.health import HealthLatency, probing
from bench.engine.load import Target, client_for, run_round
from bench.engine.models import BenchModel
from bench.engine.prompts import Prompt, PromptSource
from bench.engine.servers import RunningServer

MAX_TOKENS = 128
CONCURRENCY = (1, 16, 64)
PREFIX_TOKENS = 500
LLMAPI = "llmapi"
TS_CB = "transformers serve --continuous-batching"
LLAMA_CPP = "llama.cpp server (llama-cpp-python)"
TS_PLAIN = "transformers serve (no continuous batching)"
SEQUENTIAL = "model.generate, one request at a time"
STATIC = "model.generate, one static batch"


@dataclass(frozen=True)
class Plan:
    dtype: str
    rounds: int  # measured rounds per system and concurrency; headline numbers are their medians
    memory_requests: int  # 0 skips the memory check
    baselines: bool  # also the in-process generate baselines and transformers serve without batching
    warmup_tokens: int  # per stream in the warm-up round (at the measured concurrency)
    threads: int = os.cpu_count() or 1

    def seed(self, streams: int, round_index: int) -> int:
        """The same prompts for every system in the same round; new ones for every round."""
        return 1000 * streams + round_index


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one round each, a short memory loop")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--models", nargs="+", default=list(models.NAMES), choices=models.NAMES)
    parser.add_argument("--skip-memory", action="store_true", help="skip the 1,000-request memory check")
    parser.add_argument("--baselines", action="store_true", help="also model.generate and plain serve")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers (finally blocks) on SIGTERM
    plan = Plan(
        dtype=args.dtype,
        rounds=1 if args.quick else 3,
        memory_requests=0 if args.skip_memory else (100 if args.quick else 1000),
        baselines=args.baselines,
        warmup_tokens=16 if args.quick else MAX_TOKENS,
    )
    started = time.time()
    command = " ".join([".venv/bin/python -m bench.engine.run", *(sys.argv[1:] if argv is None else argv)])
    results = report.new_results(
        dtype=plan.dtype,
        threads=plan.threads,
        rounds=plan.rounds,
        command=command.strip(),
        order=[LLMAPI, TS_CB, LLAMA_CPP, TS_PLAIN, SEQUENTIAL, STATIC],
    )
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        workdir = Path(tmp)
        for name in args.models:
            _log(f"{name}: preparing the weights for every system")
            model = models.prepare(name, plan.dtype, workdir)
            source = PromptSource(model.tokenizer_dir)
            section = report.new_model_section(results, name)
            default_model = name == args.models[0]
            bench_llmapi(plan, model, source, workdir, section, default_model=default_model)
            if default_model:
                section["prefix_caching"]["off"] = bench_prefix_caching_off(plan, model, source, workdir)
            bench_transformers_serve(plan, model, source, workdir, section)
            bench_llama_cpp(plan, model, source, workdir, section)
            if plan.baselines:
                bench_in_process(plan, model, source, section)
    results["duration_s"] = time.time() - started
    results["meta"]["load_average_after"] = os.getloadavg()
    report.keep_other_models(results)
    report.write(results)
    print(report.markdown(results))


def bench_llmapi(
    plan: Plan,
    model: BenchModel,
    source: PromptSource,
    workdir: Path,
    section: dict[str, Any],
    *,
    default_model: bool,
) -> None:
    _log(f"{LLMAPI}, {model.name}")
    with peers.llmapi(workdir, model.name, dtype=plan.dtype) as (server, target):
        for streams in CONCURRENCY:
            health = HealthLatency()
            rounds = _http_rounds(
                plan, source, target, streams, health_url=server.base_url + "/health/live", health=health
            )
            report.add_system(section, LLMAPI, streams, rounds)
            section["health"][f"{LLMAPI} /health/live, {streams} streams"] = health.summary()
        section["kv_cache"] = _kv_cache_metrics(server)
        if default_model:
            section["prefix_caching"] = {"on": prefix_caching(source, target)}
            if plan.memory_requests:
                section["memory"] = memory_check(server, model, source, plan.memory_requests)


def bench_prefix_caching_off(
    plan: Plan, model: BenchModel, source: PromptSource, workdir: Path
) -> dict[str, Any]:
    _log(f"{LLMAPI}, {model.name}, prefix caching off")
    env = {"LLMAPI_ENGINE__PREFIX_CACHING": "false"}
    with peers.llmapi(workdir, model.name, dtype=plan.dtype, extra_env=env) as (_, target):
        return prefix_caching(source, target)


def prefix_caching(source: PromptSource, target: Target, pairs: int = 5) -> dict[str, Any]:
    """Time to first token of a prompt whose first PREFIX_TOKENS tokens (a system message) the previous
    prompt had too; the previous prompt's own first token shows the cost of reading the prefix."""
    rng = random.Random(5)

    async def measure() -> dict[str, Any]:
        first, second = [], []
        async with client_for(target) as client:
            for index in range(pairs + 1):  # the first pair warms the server up
                system = source.text(PREFIX_TOKENS, rng)
                a, b = (Prompt(source.text(24, rng), ()) for _ in range(2))
                cold = await _first_token_ms(client, target, system, a)
                warm = await _first_token_ms(client, target, system, b)
                if index:
                    first.append(cold)
                    second.append(warm)
        return {
            "prefix_tokens": PREFIX_TOKENS,
            "pairs": pairs,
            "first_ttft_ms": first,
            "second_ttft_ms": second,
            "first_ttft_p50_ms": statistics.median(first),
            "second_ttft_p50_ms": statistics.median(second),
        }

    return asyncio.run(measure())


async def _first_token_ms(client: Any, target: Target, system: str, prompt: Prompt) -> float:
    start = time.perf_counter()
    stream = await client.chat.completions.create(
        model=target.model,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": prompt.content}],
        max_tokens=4,
        temperature=0,
        stream=True,
        extra_body=target.extra_body or None,
    )
    first = None
    async for chunk in stream:
        if first is None and any(choice.delta.content for choice in chunk.choices):
            first = (time.perf_counter() - start) * 1000
    if first is None:
        raise RuntimeError("a prefix-caching request streamed no content")
    return first


def bench_transformers_serve(
    plan: Plan, model: BenchModel, source: PromptSource, workdir: Path, section: dict[str, Any]
) -> None:
    _log(f"{TS_CB}, {model.name}")
    with peers.transformers_serve(workdir, model.saved_dir, dtype=plan.dtype, continuous_batching=True) as (
        server,
        target,
    ):
        for streams in CONCURRENCY:
            health = HealthLatency()
            rounds = _http_rounds(
                plan, source, target, streams, health_url=server.base_url + "/health", health=health
            )
            report.add_system(section, TS_CB, streams, rounds)
            section["health"][f"{TS_CB} /health, {streams} streams"] = health.summary()
    if plan.baselines:
        _log(f"{TS_PLAIN}, {model.name}")
        with peers.transformers_serve(
            workdir, model.saved_dir, dtype=plan.dtype, continuous_batching=False
        ) as (_, target):
            rounds = _http_rounds(plan, source, target, 16, rounds=1, warmup_streams=1)
            report.add_system(section, TS_PLAIN, 16, rounds)


def bench_llama_cpp(
    plan: Plan, model: BenchModel, source: PromptSource, workdir: Path, section: dict[str, Any]
) -> None:
    if model.gguf is None:
        reason = "not installed (make bench-llamacpp)" if not llama_cpp.available() else "no GGUF"
        section["notes"].append(f"{LLAMA_CPP}: skipped for {model.name}: {reason}")
        return
    _log(f"{LLAMA_CPP}, {model.name}")
    with llama_cpp.server(model.gguf, workdir, threads=plan.threads, eos_token_ids=model.eos_token_ids) as (
        _,
        target,
    ):
        report.add_system(section, LLAMA_CPP, 1, _http_rounds(plan, source, target, 1))


def bench_in_process(plan: Plan, model: BenchModel, source: PromptSource, section: dict[str, Any]) -> None:
    common = {
        "model_name": model.name,
        "dtype": plan.dtype,
        "threads": plan.threads,
        "max_new_tokens": MAX_TOKENS,
    }
    _log(f"{SEQUENTIAL}, {model.name}")
    prompt_rounds = [_token_ids(source, plan.seed(16, r))[:8] for r in range(plan.rounds)]
    report.add_system(
        section, SEQUENTIAL, 1, baselines.run_in_child("sequential", rounds=prompt_rounds, **common)
    )
    for streams in CONCURRENCY[1:]:
        _log(f"{STATIC}, {streams}, {model.name}")
        prompt_rounds = [_token_ids(source, plan.seed(streams, r), streams) for r in range(plan.rounds)]
        rounds = baselines.run_in_child("static_batch", rounds=prompt_rounds, **common)
        report.add_system(section, STATIC, streams, rounds)


def memory_check(
    server: RunningServer, model: BenchModel, source: PromptSource, requests: int
) -> dict[str, Any]:
    """Server RSS before and after `requests` sequential short chat completions (max_tokens 8)."""
    _log(f"memory: {requests} sequential requests")
    prompts = source.prompts(requests + 20, seed=7)
    samples: list[tuple[int, float]] = []
    with httpx.Client(base_url=server.api_url, timeout=120) as http:
        for index, prompt in enumerate(prompts):
            if index == 20:  # after a few to settle: the "before" reading
                samples.append((0, server.rss_mib()))
            body = {
                "model": model.name,
                "messages": [{"role": "user", "content": prompt.content}],
                "max_tokens": 8,
                "temperature": 0,
            }
            http.post("/chat/completions", json=body).raise_for_status()
            if index >= 20 and (index - 19) % max(1, requests // 10) == 0:
                samples.append((index - 19, server.rss_mib()))
    before, after = samples[0][1], samples[-1][1]
    return {
        "requests": requests,
        "rss_before_mib": before,
        "rss_after_mib": after,
        "growth_mib": after - before,
        "samples": samples,
    }


def _kv_cache_metrics(server: RunningServer) -> dict[str, float]:
    """The engine's KV cache gauges from /metrics, as the server reports them after the runs."""
    text = httpx.get(server.base_url + "/metrics", timeout=30).text
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("llmapi_kv_cache_bytes"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def _http_rounds(
    plan: Plan,
    source: PromptSource,
    target: Target,
    streams: int,
    *,
    rounds: int | None = None,
    warmup_streams: int | None = None,
    health_url: str | None = None,
    health: HealthLatency | None = None,
) -> list[dict[str, float]]:
    async def measure() -> list[dict[str, float]]:
        async with client_for(target) as client:
            warmup = source.prompts(warmup_streams or streams, seed=plan.seed(streams, 99))
            await run_round(client, target, warmup, plan.warmup_tokens if warmup_streams is None else 8)
            stats = []
            for index in range(plan.rounds if rounds is None else rounds):
                prompts = source.prompts(streams, seed=plan.seed(streams, index))
                probe = probing(health_url, health) if health_url and health else nullcontext()
                with probe:
                    stats.append((await run_round(client, target, prompts, MAX_TOKENS)).as_dict())
                _log(f"  {streams} streams: {stats[-1]['tokens_per_s']:.0f} tok/s")
            return stats

    return asyncio.run(measure())


def _token_ids(source: PromptSource, seed: int, count: int = 16) -> list[tuple[int, ...]]:
    return [p.token_ids for p in source.prompts(count, seed)]


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
