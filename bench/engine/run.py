"""Engine benchmark through the HTTP API: llmapi against plain generate, a static batch, `transformers serve`.

    .venv/bin/python -m bench.engine.run [--quick] [--dtype bfloat16|float32] [--skip-memory]

Every system runs the built-in `gpt2-124m-random` in the same dtype with the same threads, greedy, EOS off,
128 new tokens per request, on the same seeded prompts (24-32 tokens after the chat template; new prompts each
round). One system runs at a time. Writes results.md, results.json and results.png next to this file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.engine import baselines, peers, report
from bench.engine.health import HealthLatency, probing
from bench.engine.load import Target, client_for, run_round
from bench.engine.prompts import PromptSource
from bench.engine.servers import RunningServer, ServerRefusedError

MAX_TOKENS = 128
CONCURRENCY = (16, 64)
LLMAPI = "llmapi (continuous batching)"
LLMAPI_INT8 = "llmapi, int8 quantization"
TS_CB = "transformers serve --continuous-batching"
TS_PLAIN = "transformers serve (no continuous batching)"
SEQUENTIAL = "model.generate, one request at a time"
STATIC = "model.generate, one static batch"


@dataclass(frozen=True)
class Plan:
    dtype: str
    rounds: int  # measured rounds per system and concurrency; headline numbers are their medians
    memory_requests: int  # 0 skips the memory check
    sequential_prompts: int
    plain_transformers_serve: bool
    warmup_tokens: int  # per stream in the warm-up round (at the measured concurrency)
    threads: int = os.cpu_count() or 1

    def seed(self, streams: int, round_index: int) -> int:
        """The same prompts for every system in the same round; new ones for every round."""
        return 1000 * streams + round_index


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one round each, a short memory loop")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--skip-memory", action="store_true", help="skip the 1,000-request memory check")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers (finally blocks) on SIGTERM
    plan = Plan(
        dtype=args.dtype,
        rounds=1 if args.quick else 3,
        memory_requests=0 if args.skip_memory else (100 if args.quick else 1000),
        sequential_prompts=8 if args.quick else 16,
        plain_transformers_serve=not args.quick,
        warmup_tokens=16 if args.quick else MAX_TOKENS,
    )
    started = time.time()
    command = " ".join([".venv/bin/python -m bench.engine.run", *(sys.argv[1:] if argv is None else argv)])
    order = [SEQUENTIAL, STATIC, LLMAPI, LLMAPI_INT8, TS_CB, TS_PLAIN]
    results = report.new_results(
        dtype=plan.dtype, threads=plan.threads, rounds=plan.rounds, command=command.strip(), order=order
    )
    source = PromptSource(peers.MODEL)
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        workdir = Path(tmp)
        bench_llmapi(plan, source, workdir, results)
        bench_llmapi_int8(plan, source, workdir, results)
        bench_transformers_serve(plan, source, workdir, results)
        bench_in_process(plan, source, results)
    results["duration_s"] = time.time() - started
    results["meta"]["load_average_after"] = os.getloadavg()
    report.write(results)
    print(report.markdown(results))


def bench_llmapi(plan: Plan, source: PromptSource, workdir: Path, results: dict[str, Any]) -> None:
    _log("llmapi")
    with peers.llmapi(workdir, dtype=plan.dtype) as (server, target):
        for streams in CONCURRENCY:
            health = HealthLatency()
            rounds = _http_rounds(
                plan, source, target, streams, health_url=server.base_url + "/health/live", health=health
            )
            report.add_system(results, LLMAPI, streams, rounds)
            results["health"][f"{LLMAPI} /health/live, {streams} streams"] = health.summary()
        if plan.memory_requests:
            results["memory"] = memory_check(server, source, plan.memory_requests)


def bench_llmapi_int8(plan: Plan, source: PromptSource, workdir: Path, results: dict[str, Any]) -> None:
    _log("llmapi int8")
    try:
        with peers.llmapi(workdir, dtype=plan.dtype, extra_env={"LLMAPI_ENGINE__QUANTIZATION": "int8"}) as (
            _,
            target,
        ):
            report.add_system(results, LLMAPI_INT8, 16, _http_rounds(plan, source, target, 16))
    except ServerRefusedError as exc:
        results["notes"].append(
            f"{LLMAPI_INT8} skipped: the server refused LLMAPI_ENGINE__QUANTIZATION=int8 ({exc})"
        )


def bench_transformers_serve(
    plan: Plan, source: PromptSource, workdir: Path, results: dict[str, Any]
) -> None:
    _log("transformers serve: saving the model")
    model_dir = workdir / "gpt2-124m-random-saved"
    baselines.run_in_child(
        "save_for_serving", model_name=peers.MODEL, dtype=plan.dtype, directory=str(model_dir)
    )
    _log(TS_CB)
    with peers.transformers_serve(workdir, model_dir, dtype=plan.dtype, continuous_batching=True) as (
        server,
        target,
    ):
        for streams in CONCURRENCY:
            health = HealthLatency()
            rounds = _http_rounds(
                plan, source, target, streams, health_url=server.base_url + "/health", health=health
            )
            report.add_system(results, TS_CB, streams, rounds)
            results["health"][f"{TS_CB} /health, {streams} streams"] = health.summary()
    if plan.plain_transformers_serve:
        _log(TS_PLAIN)
        with peers.transformers_serve(workdir, model_dir, dtype=plan.dtype, continuous_batching=False) as (
            _,
            target,
        ):
            rounds = _http_rounds(plan, source, target, 16, rounds=1, warmup_streams=1)
            report.add_system(results, TS_PLAIN, 16, rounds)


def bench_in_process(plan: Plan, source: PromptSource, results: dict[str, Any]) -> None:
    common = {
        "model_name": peers.MODEL,
        "dtype": plan.dtype,
        "threads": plan.threads,
        "max_new_tokens": MAX_TOKENS,
    }
    _log(SEQUENTIAL)
    prompt_rounds = [
        _token_ids(source, plan.seed(16, r))[: plan.sequential_prompts] for r in range(plan.rounds)
    ]
    rounds = baselines.run_in_child("sequential", rounds=prompt_rounds, **common)
    report.add_system(results, SEQUENTIAL, 16, rounds)
    for streams in CONCURRENCY:
        _log(f"{STATIC}, {streams}")
        prompt_rounds = [_token_ids(source, plan.seed(streams, r), streams) for r in range(plan.rounds)]
        rounds = baselines.run_in_child("static_batch", rounds=prompt_rounds, **common)
        report.add_system(results, STATIC, streams, rounds)


def memory_check(server: RunningServer, source: PromptSource, requests: int) -> dict[str, Any]:
    """Server RSS before and after `requests` sequential short chat completions (max_tokens 8)."""
    _log(f"memory: {requests} sequential requests")
    prompts = source.prompts(requests + 20, seed=7)
    samples: list[tuple[int, float]] = []
    with httpx.Client(base_url=server.api_url, timeout=120) as http:
        for index, prompt in enumerate(prompts):
            if index == 20:  # after a few to settle: the "before" reading
                samples.append((0, server.rss_mib()))
            body = {
                "model": peers.MODEL,
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
