"""Speed levers of the in-process engine, engine level (no HTTP), on SmolLM2-135M-Instruct (the default)
or the GPT-2-small shape with random weights.

    .venv/bin/python -m bench.engine_levers.run [--model smollm2|gpt2] [--runs 3] [--quick]
        [--lever NAME ...]

Each lever changes one thing from fp32 (the engine's own model code, float32, no quantization, 2 threads
as the server on a 2-CPU machine): dtype, model code (transformers' modules), int8, int4, threads.
--lever runs the named levers only (each measurable alone; no baselines, results printed, results.md left as
it is). For each lever:
aggregate tokens/s and median time to first token with 1, 16 and 64 concurrent requests
(16 prompts of 24-32 tokens, 128 new tokens each, EOS ignored), median of --runs; transformers' static
batch on the same requests as the baseline; and how long 16 decoding streams stall when an 896-token
prompt arrives, per max_prefill_tokens. Writes bench/engine_levers/results.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the server sets it, before torch starts OpenMP

import torch

from bench.engine_levers.scenarios import (
    MODELS,
    Lever,
    build_engine,
    concurrent_load,
    hf_static_batch,
    long_prompt_stall,
    prompts,
    warm_up,
)

RESULTS = Path(__file__).parent / "results.md"
COMMAND = "OMP_WAIT_POLICY=PASSIVE .venv/bin/python -m bench.engine_levers.run"
BF16, FP32 = torch.bfloat16, torch.float32
LEVERS = [
    (Lever("fp32", FP32), (1, 16, 64)),
    (Lever("bf16", BF16), (1, 16, 64)),
    (Lever("fp32, transformers model code", FP32, model_code="transformers"), (1, 16, 64)),
    (Lever("fp32 + int8", FP32, quantization="int8"), (1, 16, 64)),
    (Lever("fp32 + int4", FP32, quantization="int4"), (1, 16, 64)),
    (Lever("bf16 + int8", BF16, quantization="int8"), (1, 16)),
    (Lever("bf16 + int4", BF16, quantization="int4"), (1, 16)),
    (Lever("fp32, 1 thread", FP32, threads=1), (1, 16)),
]
CHUNK_SIZES = (128, 256, 512, 2048)
MODEL_TEXT = {
    "smollm2": "Built-in `smollm2-135m-instruct` (SmolLM2-135M-Instruct, the default chat model)",
    "gpt2": "Built-in `gpt2-124m-random` (GPT-2 small shape, random weights, head trimmed to the 8,192-token "
    "tokenizer)",
}


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return f"{model}, {os.cpu_count()} CPUs, torch {torch.__version__}, Python {platform.python_version()}"


def load_average() -> float:
    return os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", choices=sorted(MODELS), default="smollm2")
    parser.add_argument(
        "--quick", action="store_true", help="fp32, fp32 + int8 and fp32 + int4, no baselines"
    )
    parser.add_argument(
        "--lever",
        action="append",
        choices=[lv.name for lv, _ in LEVERS],
        help="run only this lever (repeatable)",
    )
    parser.add_argument(
        "--compile", action="store_true", help="add bf16 + torch.compile (compiling takes minutes)"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    loads = [load_average()]
    rows = [
        "| lever | 1 stream tok/s | TTFT p50 ms | 16 streams tok/s | TTFT p50 ms "
        "| 64 streams tok/s | TTFT p50 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    quick = ("fp32", "fp32 + int8", "fp32 + int4")
    levers = [lv for lv in LEVERS if not args.quick or lv[0].name in quick]
    if args.lever:
        levers = [lv for lv in LEVERS if lv[0].name in args.lever]
    if args.compile:
        levers.append((Lever("bf16 + compile", BF16, compile_model=True), (1, 16)))
    for lever, concurrencies in levers:
        lever = replace(lever, model=args.model)
        engine, vocab = build_engine(lever)
        warm_up(engine, vocab)
        cells = []
        for concurrency in (1, 16, 64):
            if concurrency in concurrencies:
                result = asyncio.run(concurrent_load(engine, vocab, concurrency, args.runs))
                cells += [f"{result.tokens_per_second:.1f}", f"{result.ttft_p50_ms:.0f}"]
            else:
                cells += ["-", "-"]
        rows.append(f"| {lever.name} | " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
        loads.append(load_average())
    baseline = []
    stalls = []
    if args.lever:
        return
    if not args.quick:
        torch.set_num_threads(2)
        vocab_prompts = prompts(8192)
        for batch in (16, 64):
            speed = hf_static_batch(args.model, FP32, vocab_prompts, batch, args.runs)
            baseline.append(f"| transformers generate, static batch of {batch}, fp32 | {speed:.1f} |")
            print(baseline[-1], flush=True)
        for size in CHUNK_SIZES:
            engine, vocab = build_engine(Lever("fp32", FP32, max_prefill_tokens=size, model=args.model))
            long_prompt_stall(engine, vocab)  # warm-up
            stall = long_prompt_stall(engine, vocab)
            stalls.append(f"| {size} | {stall.longest_gap_ms:.0f} | {stall.long_prompt_ttft_ms:.0f} |")
            print(stalls[-1], flush=True)
        loads.append(load_average())
    write(rows, baseline, stalls, loads, time.perf_counter() - started, args)


def write(
    rows: list[str],
    baseline: list[str],
    stalls: list[str],
    loads: list[float],
    seconds: float,
    args: argparse.Namespace,
) -> None:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    text = [
        "# Engine speed levers",
        "",
        f"Command: `{' '.join([COMMAND, *sys.argv[1:]])}`",
        f"Machine: {machine()}; commit {commit} (plus working tree); {seconds:.0f} s; "
        f"1-minute load average during the run: {min(loads):.2f}-{max(loads):.2f}.",
        "",
        f"{MODEL_TEXT[args.model]}, engine level (AsyncEngine, no HTTP), 16 prompts of 24-32 tokens "
        "repeated to the "
        f"concurrency, 128 new tokens each (EOS ignored, temperature 1), median of {args.runs} runs. "
        "TTFT is the median over requests of the time to the first token.",
        "",
        *rows,
    ]
    if baseline:
        text += [
            "",
            "Baseline: the same requests through transformers' `generate` (sdpa, float32).",
            "",
            "| baseline | tok/s |",
            "|---|---|",
            *baseline,
            "",
            "Chunked prefill: 16 streams decoding (fp32) when an 896-token prompt arrives. Longest pause "
            "between two tokens of a running stream, and the long prompt's time to first token, per "
            "`max_prefill_tokens`.",
            "",
            "| max_prefill_tokens | longest stall ms | long prompt TTFT ms |",
            "|---|---|---|",
            *stalls,
        ]
    RESULTS.write_text("\n".join(text) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
